#!/bin/sh
# Prepare the demo Laravel app (examples/laravel-app) for serving.
#
# Idempotent: safe to run again after a pull or on a fresh copy.  Steps:
#   1. check that Debian's Laravel 8 and the PHP extensions it needs exist;
#   2. create storage/ and bootstrap/cache/ and make them writable;
#   3. create the SQLite file, migrate and seed (seeding is idempotent);
#   4. cache config, routes and views, which is what a production worker
#      boots from.
#
# Usage: scripts/setup-laravel-app.sh [APP_DIR]
#   APP_DIR defaults to examples/laravel-app next to this script.  Tests run
#   it on a throwaway copy so the repository stays clean.
#   ASKR_APP_USER=www-data makes that user own the writable directories.
#
# Debian packages: php-laravel-framework (pulls in php-symfony-*, monolog,
# carbon, ...), php8.2-cli, php8.2-sqlite3, php8.2-mbstring, php8.2-xml.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
app=${1:-"$here/../examples/laravel-app"}
app=$(cd "$app" && pwd)
php=${PHP:-php}

if [ ! -f /usr/share/php/Illuminate/autoload.php ]; then
    echo "setup-laravel-app: Laravel not found; install it with:" >&2
    echo "  apt-get install php-laravel-framework php8.2-sqlite3" \
         "php8.2-mbstring php8.2-xml" >&2
    exit 1
fi
for ext in pdo_sqlite mbstring dom; do
    if ! "$php" -m | grep -qix "$ext"; then
        echo "setup-laravel-app: PHP extension $ext missing" >&2
        exit 1
    fi
done

for d in storage/app storage/framework/cache/data \
         storage/framework/sessions storage/framework/views \
         storage/logs bootstrap/cache database; do
    mkdir -p "$app/$d"
done
chmod -R u+rwX,g+rwX "$app/storage" "$app/bootstrap/cache" "$app/database"
if [ -n "${ASKR_APP_USER:-}" ]; then
    chown -R "$ASKR_APP_USER" "$app/storage" "$app/bootstrap/cache" \
        "$app/database"
fi

# Stale caches could point at another checkout; drop them before migrating.
rm -f "$app"/bootstrap/cache/config.php "$app"/bootstrap/cache/routes-v7.php

db="$app/database/database.sqlite"
[ -f "$db" ] || : > "$db"

cd "$app"
"$php" artisan migrate --seed --force
"$php" artisan config:cache
"$php" artisan route:cache
"$php" artisan view:cache

# Session garbage collection is off in config/session.php (no lottery in
# long-lived workers); expire old session files here instead.
find storage/framework/sessions -type f -name '[!.]*' -mmin +120 -delete

echo "setup-laravel-app: ready in $app"
