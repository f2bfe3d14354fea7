# Integer helpers for the report scripts.

add() {
  echo $(( $1 + $2 ))
}

# The mean of the arguments, rounded down.
mean() {
  local sum=0 n
  for n in "$@"; do sum=$(( sum + n )); done
  echo $(( sum / ($# + 1) ))
}
