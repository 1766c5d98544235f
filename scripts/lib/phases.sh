# Times the phases of a top-level script (install, build, run ...) and prints them together at the end, so that
# a user sees where the minutes went. Source it, run each phase as `phase NAME COMMAND...`, end with `phases_summary`.
phase_names=()
phase_seconds=()
phases_started=$SECONDS

phase() {
  local name="$1" started=$SECONDS
  shift
  "$@"
  phase_names+=("$name")
  phase_seconds+=($((SECONDS - started)))
}

phases_summary() {
  local line="" i
  for i in "${!phase_names[@]}"; do
    line+="${phase_names[$i]} ${phase_seconds[$i]} s, "
  done
  echo "time: ${line}total $((SECONDS - phases_started)) s" >&2
}
