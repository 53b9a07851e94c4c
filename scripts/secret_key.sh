#!/usr/bin/env bash
# Print the local installation's SECRET_KEY, generating it (readable by this user only) the first time.
set -eu
file=${SECRET_KEY_FILE:-var/secret_key}
if [ ! -s "$file" ]; then
  mkdir -p "$(dirname "$file")"
  (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(50))' > "$file")
fi
cat "$file"
