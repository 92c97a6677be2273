#!/bin/sh
# What `keyward exec` starts in the end-to-end tests of exit status, signals and stdin.
#   exit N        exits with N
#   selfterm      ends itself with SIGTERM
#   trap FILE     waits; on SIGTERM writes "term" to FILE and exits 42
#   cat           copies stdin to stdout
#   touch FILE    creates FILE
case "$1" in
  exit) exit "$2" ;;
  selfterm) kill -TERM $$ ;;
  trap) trap 'echo term > "$2"; exit 42' TERM; while :; do sleep 0.1; done ;;
  cat) exec cat ;;
  touch) : > "$2" ;;
  *) echo "unknown mode $1" >&2; exit 64 ;;
esac
