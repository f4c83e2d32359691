<?php

/*
 * Demo routes.  Controllers only (no closures) so `route:cache` works.
 */

use App\Http\Controllers\AuthController;
use App\Http\Controllers\DemoController;
use App\Http\Controllers\ProbeController;
use App\Http\Controllers\StateController;
use Illuminate\Support\Facades\Route;

Route::get('/', [DemoController::class, 'index']);
Route::get('/text', [DemoController::class, 'text']);
Route::get('/json', [DemoController::class, 'json']);
Route::get('/db', [DemoController::class, 'db']);
Route::get('/blade', [DemoController::class, 'blade']);
Route::post('/upload', [DemoController::class, 'upload']);
Route::get('/throw', [DemoController::class, 'throw']);
Route::get('/dispatch', [DemoController::class, 'dispatchJob']);

Route::get('/session', [StateController::class, 'session']);
Route::get('/form', [StateController::class, 'showForm']);
Route::post('/form', [StateController::class, 'submitForm']);
Route::get('/flash', [StateController::class, 'flash']);
Route::get('/flash/show', [StateController::class, 'showFlash']);
Route::get('/locale', [StateController::class, 'locale']);
Route::get('/locale/{lang}', [StateController::class, 'setLocale']);

Route::get('/login', [AuthController::class, 'showLogin'])->name('login');
Route::post('/login', [AuthController::class, 'login']);
Route::post('/logout', [AuthController::class, 'logout']);
Route::get('/me', [AuthController::class, 'me']);

// Leak probes for worker-mode tests (see ProbeController).
Route::get('/probe/cookie', [ProbeController::class, 'cookie']);
Route::get('/probe/config', [ProbeController::class, 'config']);
Route::get('/probe/share', [ProbeController::class, 'share']);
