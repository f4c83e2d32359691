<?php

namespace App\Http\Controllers;

use Illuminate\Http\Request;
use Illuminate\Support\Facades\Cookie;
use Illuminate\Support\Facades\View;

/*
 * Leak probes: each GET /probe/{thing}?set=v changes one piece of
 * process-wide state the way application code legitimately does during a
 * request; GET /probe/{thing} without ?set shows what a request sees.  In
 * classic PHP nothing survives the request; a long-lived worker must
 * reset each of these (see examples/laravel-worker.php).
 */
class ProbeController extends Controller
{
    public function cookie(Request $request)
    {
        // A queued cookie is attached to "the" response by middleware.
        if ($request->has('set')) {
            Cookie::queue('probe', (string) $request->query('set'), 10);
        }

        $names = array_map(
            static fn ($cookie) => $cookie->getName(),
            Cookie::getQueuedCookies()
        );

        return response()->json(['queued' => array_values($names)]);
    }

    public function config(Request $request)
    {
        // Runtime config change, e.g. a per-tenant setting.
        if ($request->has('set')) {
            config(['app.probe' => (string) $request->query('set')]);
        }

        return response()->json(['probe' => config('app.probe')]);
    }

    public function share(Request $request)
    {
        // Data shared with every view rendered from now on.
        if ($request->has('set')) {
            View::share('probe', (string) $request->query('set'));
        }

        return response(view('probe')->render())
            ->header('Content-Type', 'text/plain; charset=UTF-8');
    }
}
