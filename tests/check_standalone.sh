#!/bin/sh
# Fails when a file of the project, its test data included, refers to
# something outside the repository: a directory beside it or an absolute
# path of a build machine.
root=$1
cd "$root" || exit 2
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files | grep -v '^tests/check_standalone.sh$')
else
  files=$(find . -type f ! -path './.git/*' ! -path './build*' ! -name check_standalone.sh | sed 's|^\./||')
fi
status=0
for pattern in '\.\./shared' '/work/'; do
  hits=$(printf '%s\n' "$files" | xargs grep -l -- "$pattern" 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "refers to '$pattern' (outside the repository):"
    printf '  %s\n' $hits
    status=1
  fi
done
exit $status
