<?php

namespace App\Http\Controllers;

use Illuminate\Http\Request;
use Illuminate\Support\Facades\Auth;

/*
 * Session-guard login against the seeded user (demo@example.com / secret).
 */
class AuthController extends Controller
{
    public function showLogin(Request $request)
    {
        return view('login', ['token' => $request->session()->token()]);
    }

    public function login(Request $request)
    {
        $credentials = $request->only('email', 'password');

        if (! Auth::attempt($credentials)) {
            return response()->json(['ok' => false], 401);
        }

        $request->session()->regenerate();

        return response()->json(['ok' => true, 'user' => Auth::user()->email]);
    }

    public function logout(Request $request)
    {
        Auth::logout();
        $request->session()->invalidate();
        $request->session()->regenerateToken();

        return response()->json(['ok' => true]);
    }

    public function me()
    {
        $user = Auth::user();

        return response()->json([
            'user' => $user ? $user->email : null,
            'guest' => $user === null,
        ]);
    }
}
