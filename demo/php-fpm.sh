#!/bin/sh
# Runs a private php-fpm pool in the foreground for the demo: its config, log, pid and
# socket go to RUN_DIR (default: run/ next to this script, where tronada.toml expects
# the socket). Exits 3 when php-fpm is not installed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
run_dir=${1:-$here/run}
fpm=$(ls /usr/sbin/php-fpm* 2>/dev/null | sort | tail -n 1 || true)
if [ -z "$fpm" ]; then
  echo "php-fpm.sh: php-fpm is not installed; the /php/ route will answer 502" >&2
  exit 3
fi
mkdir -p "$run_dir"
# php-fpm reads relative paths in its config against its own prefix, not our folder.
run_dir=$(cd "$run_dir" && pwd)
rm -f "$run_dir/php-fpm.sock"
user=""
extra=""
if [ "$(id -u)" = 0 ]; then
  # php-fpm refuses to run a pool as root unless told to; the demo runs as the caller.
  user="user = root
group = root"
  extra="-R"
fi
cat >"$run_dir/php-fpm.conf" <<CONF
[global]
error_log = $run_dir/php-fpm.log
daemonize = no
pid = $run_dir/php-fpm.pid
[demo]
$user
listen = $run_dir/php-fpm.sock
pm = static
pm.max_children = 2
CONF
exec "$fpm" -F -y "$run_dir/php-fpm.conf" $extra
