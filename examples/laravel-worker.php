<?php

/*
 * Askr worker-mode entry point for a Laravel application.
 *
 * Theory of operation
 * -------------------
 * Classic PHP boots the framework for every request and throws everything
 * away afterwards.  Here the application is booted ONCE per worker process
 * (autoloader, providers, config, routes), then askr_handle_request() is
 * called in a loop.  Each call waits for the next request, fills the
 * superglobals and php://input, runs the closure below, and completes the
 * response; it returns false when Askr wants the worker to stop (drain,
 * max requests, memory limit).
 *
 * Because the same objects serve many requests, anything Laravel keeps in
 * memory for "the current request" must be put back to its boot-time state
 * after each one, or one user's session, login, cookies or locale would
 * show up in another user's response.  askr_reset_request_state() does
 * that; each step says what it resets and why.  The list follows the same
 * ground as Laravel Octane's flush listeners, reduced to what applies when
 * the application object itself is reused (Octane clones it per request).
 *
 * Works on Laravel 8 (Debian's php-laravel-framework) and sticks to APIs
 * still present in Laravel 10-12; calls that differ between versions are
 * guarded with method_exists().
 *
 * Application base: $_SERVER['ASKR_APP_BASE'] or the ASKR_APP_BASE
 * environment variable, else the demo app next to this script.
 */

use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Contracts\Http\Kernel as HttpKernel;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\Facade;

$askrAppBase = $_SERVER['ASKR_APP_BASE'] ?? getenv('ASKR_APP_BASE');
if (! is_string($askrAppBase) || $askrAppBase === '') {
    $askrAppBase = __DIR__.'/laravel-app';
}

require $askrAppBase.'/vendor/autoload.php';

/** @var \Illuminate\Foundation\Application $app */
$app = require $askrAppBase.'/bootstrap/app.php';

$kernel = $app->make(HttpKernel::class);

/*
 * Finish booting now rather than on the first request, so the first client
 * does not pay for it and boot errors show up before any request is taken.
 * The kernel's own bootstrap() is idempotent: handle() will skip it later.
 */
$kernel->bootstrap();

/*
 * Boot-time snapshots that askr_reset_request_state() restores.  Copies of PHP
 * arrays are copy-on-write, so keeping them costs nothing until a request
 * changes the original.
 */
$askrBootConfig = $app['config']->all();
$askrBootLocale = $app->getLocale();
$askrBootShared = $app['view']->getShared();

/**
 * Put everything a request may have changed back to the boot-time state.
 */
function askr_reset_request_state(
    Illuminate\Foundation\Application $app,
    array $bootConfig,
    string $bootLocale,
    array $bootShared
): void {
    // Locale: App::setLocale() rewrites config('app.locale'), sets the
    // translator's locale and fires LocaleUpdated.  Done before the config
    // restore below, which would put app.locale back but leave the
    // translator speaking the request's language.  Skipped when nothing
    // changed, to keep the common path free of event dispatch.
    $translatorLocale = $app->resolved('translator')
        ? $app['translator']->getLocale() : $bootLocale;
    if ($app->getLocale() !== $bootLocale || $translatorLocale !== $bootLocale) {
        $app->setLocale($bootLocale);
    }

    // Config: code may call config([...]) for one request (a tenant's
    // mailer, a feature flag).  Re-setting every top-level key restores the
    // boot values.
    $app['config']->set($bootConfig);

    // Session: the session store object is shared by the session manager,
    // the 'session.store' singleton, the redirector and the auth guards, so
    // it is emptied in place rather than replaced (a replaced store would
    // leave those holding the old one).  flush() drops the attributes:
    // session data, flashed data and the CSRF token.  StartSession loads
    // the next request's data by *merging* it into the attributes, which is
    // why leaving them filled would leak one user's data to the next.
    // migrate(false) gives the store a new id without touching the saved
    // session: StartSession sets the id from the cookie anyway, but a route
    // outside the 'web' group that touches the session must not write into
    // the previous user's session file.
    if ($app->resolved('session')) {
        $store = $app['session']->driver();
        $store->migrate(false);
        $store->flush();
    }

    // Authentication: guards cache the user they resolved, their logged-out
    // flag and the request they were built with.  Forgetting them makes the
    // next request build a guard that reads its own session.  'auth.driver'
    // is the default guard bound as an instance.
    if ($app->resolved('auth') && $app['auth']->hasResolvedGuards()) {
        $app['auth']->forgetGuards();
        askr_forget_guard_rebinding($app);
    }
    $app->forgetInstance('auth.driver');

    // Cookies: AddQueuedCookiesToResponse copies queued cookies onto the
    // response but never empties the queue, so a cookie queued for one
    // user (remember-me, a preference) would be sent to every later user.
    if ($app->resolved('cookie')) {
        $app['cookie']->flushQueuedCookies();
    }

    // Views: data shared with View::share() during a request (for example
    // 'errors' from ShareErrorsFromSession, or a view composer sharing the
    // current user) must not reach the next request's views.  The factory
    // has no public setter for the whole array, hence the bound closure.
    if ($app->resolved('view')) {
        $view = $app['view'];
        $view->flushState();
        (function () use ($bootShared) {
            $this->shared = $bootShared;
        })->call($view);
    }

    // Database: a request that failed inside DB::beginTransaction() must
    // not leave the next request running inside its transaction; the query
    // log (when enabled) would grow without bound; the "records modified"
    // flag would keep later requests on the write connection of a
    // read/write split ('sticky' option).
    if ($app->resolved('db')) {
        foreach ($app['db']->getConnections() as $connection) {
            while ($connection->transactionLevel() > 0) {
                $connection->rollBack(0);
            }
            $connection->flushQueryLog();
            if (method_exists($connection, 'forgetRecordModificationState')) {
                $connection->forgetRecordModificationState();
            }
        }
    }

    // The 'array' cache store is documented as lasting one request; in a
    // worker it would otherwise last the life of the process.
    if ($app->resolved('cache') && $app['config']->get('cache.stores.array')) {
        $app['cache']->store('array')->flush();
    }

    // Log context added with Log::withContext() belongs to one request.
    if ($app->resolved('log')) {
        $logger = $app['log']->driver();
        if (method_exists($logger, 'withoutContext')) {
            $logger->withoutContext();
        }
    }

    // Services registered with $app->scoped() (Laravel 8.38+) are meant to
    // live for one request; the container drops them here.
    if (method_exists($app, 'forgetScopedInstances')) {
        $app->forgetScopedInstances();
    }

    // Facades keep the object they resolved.  The request is rebound per
    // request by the kernel; the others are cleared so a facade never
    // holds an instance that was replaced above.
    foreach (['request', 'session', 'session.store', 'auth', 'auth.driver',
              'cookie', 'url', 'redirect', 'view'] as $abstract) {
        Facade::clearResolvedInstance($abstract);
    }
}

/**
 * Drop the container's "request rebound" callbacks that point at auth guards.
 *
 * AuthManager builds each session guard with
 * $app->refresh('request', $guard, 'setRequest'), which appends a callback
 * holding the guard to the container.  The container has no API to remove
 * one, so with guards rebuilt for every request the list would grow by one
 * callback (and one dead guard with its user model) per request: a leak of
 * about 1 KB per request, and ever more work at each request rebind.  The
 * callback is a closure whose captured $target is the guard; those are
 * removed, every other rebinding (URL generator, ...) is kept.  Octane
 * avoids this by cloning the application per request instead.
 */
function askr_forget_guard_rebinding(Illuminate\Foundation\Application $app): void
{
    if (! property_exists($app, 'reboundCallbacks')) {
        return;
    }

    (function (): void {
        foreach ($this->reboundCallbacks['request'] ?? [] as $i => $callback) {
            if (! $callback instanceof Closure) {
                continue;
            }
            $captured = (new ReflectionFunction($callback))->getStaticVariables();
            if (($captured['target'] ?? null) instanceof Illuminate\Contracts\Auth\Guard) {
                unset($this->reboundCallbacks['request'][$i]);
            }
        }
    })->call($app);
}

$askrHandler = static function () use (
    $app, $kernel, $askrBootConfig, $askrBootLocale, $askrBootShared
): void {
    // The kernel binds the request into the container ('request'), which
    // also hands it to the URL generator and the auth user resolver through
    // their rebinding hooks.
    $request = Request::capture();
    $response = null;

    try {
        $response = $kernel->handle($request);

        // send() calls fastcgi_finish_request() when it exists (Askr
        // provides it), so the client gets the response before
        // terminate() runs terminable middleware (session save is done by
        // then: StartSession saves inside handle()).
        $response->send();

        $kernel->terminate($request, $response);
    } catch (Throwable $e) {
        // handle() turns exceptions into responses itself; this only
        // catches failures in send()/terminate() or the handler, which
        // must not end the worker loop.
        try {
            $app->make(ExceptionHandler::class)->report($e);
        } catch (Throwable $ignored) {
            error_log('laravel-worker: '.$e->getMessage());
        }
        if ($response === null && ! headers_sent()) {
            http_response_code(500);
            echo 'Internal Server Error';
        }
    } finally {
        askr_reset_request_state(
            $app, $askrBootConfig, $askrBootLocale, $askrBootShared
        );
    }
};

while (askr_handle_request($askrHandler)) {
    // Cycles left by a request (closures holding $this, Eloquent relations)
    // are collected by PHP's GC when its buffer fills; nothing to do here.
}
