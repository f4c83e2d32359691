<?php

namespace Database\Seeders;

use App\Models\Item;
use App\Models\User;
use Illuminate\Database\Seeder;
use Illuminate\Support\Facades\Hash;

/*
 * Idempotent: updateOrCreate lets the setup script run `migrate --seed`
 * again without duplicating rows.
 */
class DatabaseSeeder extends Seeder
{
    public function run()
    {
        User::query()->updateOrCreate(
            ['email' => 'demo@example.com'],
            ['name' => 'Demo User', 'password' => Hash::make('secret')]
        );

        User::query()->updateOrCreate(
            ['email' => 'other@example.com'],
            ['name' => 'Other User', 'password' => Hash::make('secret')]
        );

        $items = [
            'apple' => 120, 'bread' => 250, 'cheese' => 480, 'dates' => 330,
            'eggs' => 290, 'figs' => 410, 'grapes' => 360, 'honey' => 720,
        ];
        foreach ($items as $name => $price) {
            Item::query()->updateOrCreate(['name' => $name], ['price' => $price]);
        }
    }
}
