#!/bin/busybox sh
# The init of the VMs that tests/forge_kernel.rs boots: runs speck's programs for each
# architecture the kernel runs (/programs/<arch>/) and reports each finding as a line
# "SPECK <arch>/<name> <value>".
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /dev /tmp
mount -t proc proc /proc
mount -t devtmpfs dev /dev
ip link set lo up

report() { name=$1; shift; echo "SPECK $arch/$name $*"; }

# The state of process $1 (R, S, T, Z...; none once reaped). Commands here have no spaces.
state() { read -r _ _ s _ < "/proc/$1/stat" 2>/dev/null && echo "$s"; }
# The children of process $1, as "pid state" lines.
children() {
  for stat in /proc/[0-9]*/stat; do
    read -r pid _ s ppid _ < "$stat" 2>/dev/null && [ "$ppid" = "$1" ] && echo "$pid $s"
  done
}
# Waits (up to 10 s) until "$@" succeeds.
until_true() {
  for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done
  return 1
}
# Whether process $1 runs program $2 and either handles SIGTERM (bit 15) or waits for
# it in rt_sigtimedwait (x86 pause: number 128 on x86-64, 177 for a 32-bit task): a PID 1
# drops a signal it neither handles nor waits for, so signalling it earlier proves nothing.
takes_term() {
  [ "$(readlink "/proc/$1/exe")" = "$2" ] || return 1
  caught=$(grep '^SigCgt:' "/proc/$1/status" | cut -f2)
  [ $((0x$caught & 0x4000)) -ne 0 ] && return 0
  read -r call _ < "/proc/$1/syscall"
  [ "$call" = 128 ] || [ "$call" = 177 ]
}

# Starts "$@" as PID 1 of a new PID namespace: $outer is unshare, $pid1 the program.
as_pid1() {
  unshare -fp "$@" &
  outer=$!
  until_true eval 'pid1=$(children $outer | cut -d" " -f1); [ -n "$pid1" ]'
}
# Sends signal $2 to $pid1 and reports the namespace's exit status as $1, or "timeout".
ends() {
  kill "-$2" "$pid1"
  if until_true exited "$outer"; then
    wait "$outer"
    report "$1" $?
  else
    report "$1" timeout "$(grep -E '^(State|Sig|ShdPnd)' /proc/$pid1/status | tr '\n\t' '  ')"
    kill -9 "$pid1"
    wait "$outer"
  fi
}
# Whether process $1 has exited (the shell may have reaped it already: `wait` still
# gives its status).
exited() { s=$(state "$1"); [ -z "$s" ] || [ "$s" = Z ]; }
zombies_of() { children "$1" | grep -c ' Z$'; }

# Runs the checks on the programs in directory $1.
check() {
  p=$1

  $p/hello >/tmp/out
  report hello-status $?
  report hello-bytes "$(od -An -tx1 /tmp/out | tr -d ' \n')"
  $p/exit
  report exit-status $?

  for signal in TERM INT; do
    as_pid1 $p/pause
    until_true takes_term "$pid1" $p/pause
    ends "pause-$signal" "$signal"
  done

  # Stopped and continued, pause waits on and still ends on TERM.
  as_pid1 $p/pause
  until_true takes_term "$pid1" $p/pause
  kill -STOP "$pid1"
  until_true [ "$(state $pid1)" = T ]
  kill -CONT "$pid1"
  until_true [ "$(state $pid1)" = S ]
  report pause-after-stop "$(state $pid1)"
  ends pause-stopped-TERM TERM

  # An orphan of the namespace is pause's to reap.
  as_pid1 sh -c "(sleep 5 &); exec $p/pause"
  until_true takes_term "$pid1" $p/pause
  report pause-orphans "$(children $pid1 | wc -l)"
  until_true eval '! children $pid1 | grep -qv " Z$"'
  sleep 0.5
  report pause-zombies "$(zombies_of $pid1)"
  ends pause-orphans-TERM TERM

  # init: forwards SIGTERM to its child, takes its status (or 128+signal), reaps orphans.
  as_pid1 $p/tini /bin/sh -c 'trap "exit 7" TERM; while :; do sleep 0.1; done'
  until_true eval 'child=$(children $pid1 | cut -d" " -f1 | head -1); [ -n "$child" ] && takes_term $child /bin/busybox'
  ends init-forwarded-TERM TERM
  as_pid1 $p/tini /bin/sleep 100
  until_true eval '[ -n "$(children $pid1)" ]'
  sleep 0.5
  ends init-child-killed TERM
  # The child leaves 100 orphans, then waits for /tmp/finish to exit 3. (Reaping takes
  # init a moment per orphan: wait until none is left, at most 10 s, init still running.)
  rm -f /tmp/spawned /tmp/finish
  as_pid1 $p/tini /bin/sh -c 'for i in $(seq 100); do (true &); done; touch /tmp/spawned
    until [ -e /tmp/finish ]; do sleep 0.1; done; exit 3'
  until_true [ -e /tmp/spawned ]
  until_true [ "$(zombies_of $pid1)" = 0 ]
  report init-zombies "$(zombies_of $pid1)"
  touch /tmp/finish
  until_true exited "$outer"
  wait "$outer"
  report init-status $?

  # http: answers, and ends on TERM as PID 1.
  as_pid1 $p/http
  until_true wget -q -O /tmp/response http://127.0.0.1:8000/
  report http-body "$(cat /tmp/response)"
  ends http-TERM TERM
}

arch=kernel
report machine "$(uname -m) $(uname -r)"
report page-kib "$(grep -m1 KernelPageSize /proc/self/smaps | tr -s ' ' | cut -d' ' -f2)"
for p in /programs/*; do
  arch=${p##*/}
  check "$p"
done
arch=kernel
report done
poweroff -f
