# shellcheck shell=bash
# How every script reports: each line names the script and goes to stderr, so that stdout carries only what a
# script answers (a build script's last line of stdout is the directory it wrote).
#
#   log MSG...         prints "NAME: MSG"
#   die MSG [STATUS]   prints "NAME: error: MSG" and ends the script with STATUS (default 1)
#
# NAME is $log_name: the script's file name without .sh, or for a build.sh its directory's name
# (scripts/crane/build.sh logs as "crane"); a script may set another after sourcing this. Sourcing runs no
# command, so a script can say what is missing on a PATH that has next to nothing.

log_name=${0##*/}
log_name=${log_name%.sh}
if [[ $log_name == build ]]; then
  log_dir=${0%/*}
  [[ $0 == */* && $log_dir != . ]] || log_dir=$PWD
  log_name=${log_dir##*/}
  unset log_dir
fi

log() { echo "$log_name: $*" >&2; }
die() { echo "$log_name: error: $1" >&2; exit "${2:-1}"; }
