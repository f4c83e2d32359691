<?php

namespace App\Http\Controllers;

use Illuminate\Http\Request;
use Illuminate\Support\Facades\App;

/*
 * Routes that keep or change per-request state: the session, flashed data,
 * the CSRF token and the locale.  A long-lived worker must not let any of
 * it leak from one request into the next; the tests use these routes to
 * check that.
 */
class StateController extends Controller
{
    public function session(Request $request)
    {
        $session = $request->session();
        $counter = (int) $session->get('counter', 0) + 1;
        $session->put('counter', $counter);

        return response()->json([
            'session_id' => $session->getId(),
            'counter' => $counter,
        ]);
    }

    public function showForm(Request $request)
    {
        return view('form', ['token' => $request->session()->token()]);
    }

    public function submitForm(Request $request)
    {
        return response()->json([
            'ok' => true,
            'name' => $request->input('name'),
        ]);
    }

    public function flash(Request $request)
    {
        $value = (string) $request->query('value', 'flashed');
        $request->session()->flash('message', $value);

        return response()->json(['flashed' => $value]);
    }

    public function showFlash(Request $request)
    {
        return response()->json(['message' => $request->session()->get('message')]);
    }

    public function locale()
    {
        return response()->json([
            'locale' => App::getLocale(),
            'translator' => app('translator')->getLocale(),
        ]);
    }

    public function setLocale(string $lang)
    {
        // Only for this request: nothing is stored, so the next request must
        // see config('app.locale') again.
        App::setLocale($lang);

        return response()->json([
            'locale' => App::getLocale(),
            'translator' => app('translator')->getLocale(),
        ]);
    }
}
