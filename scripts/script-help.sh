# Sourced by the scripts: `--help` prints the calling script's header comment
# (from line 2 to `set -euo`), and a script without options refuses any.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/script-help.sh"
#   only_help_option build-gitea "$@"

print_script_help() {
  sed -n '2,/^set -euo/p' "$1" | sed -e '$d' -e 's/^# \{0,1\}//'
}

only_help_option() {
  local name="$1" argument
  shift
  for argument in "$@"; do
    case "$argument" in
      -h | --help) print_script_help "${BASH_SOURCE[1]}"; exit 0 ;;
      *) echo "$name: unknown option $argument (see --help)" >&2; exit 2 ;;
    esac
  done
}
