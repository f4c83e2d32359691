<?php

namespace App\Providers;

use Illuminate\Support\ServiceProvider;

class AppServiceProvider extends ServiceProvider
{
    public function register()
    {
        // Nothing to register: the demo relies on framework services only.
    }

    public function boot()
    {
        // Nothing to boot.
    }
}
