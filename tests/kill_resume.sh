# Sourced by test_bulk.sh and test_outputs.sh: SIGKILL a resumable `audiocap caption --resume` run at random
# moments, again and again, so the tests can then check that the output ends with every row exactly once.
# Why the delays are measured: fixed sleeps (0.1-0.5 s) landed after the run had ended on a fast CI machine (one
# kill in 30 tries), so each delay is a random share of a clean run's measured wall time, and a kill counts only
# if it found the process still running (wait status 137, never a run that had already exited 0).

# wall_s CMD...: run CMD (output discarded), print its wall time in seconds
wall_s() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

# rows FILE: complete (newline-ended) rows in FILE, 0 if it does not exist
rows() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# size_set DIR SRC EXT CAP CMD...: DIR holds links DIR/c<i>.EXT -> SRC, i = 1..n_set. Times CMD (a clean run over DIR)
# and, while one took under 2 s, adds links for a ~2.2 s run (CAP files at most) and times it again (a run's fixed
# start makes one step fall short), so that the random kills below land mid-run on a machine of any speed. Sets
# T (seconds) and n_set.
size_set() {
  local dir=$1 src=$2 ext=$3 cap=$4 grow i round
  shift 4
  n_set=$(find "$dir" -name "*.$ext" | wc -l)
  T=$(wall_s "$@")
  for round in 1 2 3 4; do
    grow=$(awk -v t="$T" -v n="$n_set" -v cap="$cap" 'BEGIN { m = t >= 2 ? n : int(n * 2.2 / (t > 0.01 ? t : 0.01)) + 1; print (m > cap ? cap : m) }')
    [ "$grow" -gt "$n_set" ] || break
    for i in $(seq $((n_set + 1)) "$grow"); do ln -s "$src" "$dir/c$i.$ext"; done
    n_set=$grow
    T=$(wall_s "$@")
  done
}

# kill_resume T OUT CMD...: start CMD (a --resume run that writes OUT) up to 40 times and SIGKILL each one after a
# random 3-15 % of T seconds (T: a clean run's wall time; 5 kills then stop well short of the end), until 5 kills
# landed mid-output. Sets `kills` (kills that found the run alive) and `kills_mid` (of those, the ones after the
# run had added rows to OUT: a kill between or inside row writes, the case --resume must repair).
kill_resume() {
  local T=$1 out=$2
  shift 2
  kills=0
  kills_mid=0
  local attempt pid rc before delay
  for attempt in $(seq 1 40); do
    before=$(rows "$out")
    "$@" 2>/dev/null &
    pid=$!
    delay=$(awk -v t="$T" -v r="$RANDOM" 'BEGIN { printf "%.3f", t * (0.03 + 0.12 * r / 32767) }')
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rc=$?
    if [ "$rc" -eq 137 ]; then
      kills=$((kills + 1))
      [ "$(rows "$out")" -gt "$before" ] && kills_mid=$((kills_mid + 1))
    fi
    [ $kills_mid -ge 5 ] && break
  done
  echo "kill_resume: $kills kills in $attempt runs ($kills_mid after rows were written; clean run ${T} s)"
}
