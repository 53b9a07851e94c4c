#!/usr/bin/env bash
# What `make up` prints before the processes start.
port=$1
cat <<MSG

  Migration Control Panel: http://127.0.0.1:${port}/
  Logins (demo only):
    on-call engineer  oncall  / oncall-demo-pass
    lead              lead    / lead-demo-pass   (also has the admin at /admin/)
    support           support / support-demo-pass
  Health: http://127.0.0.1:${port}/health/      Stop with Ctrl-C.

MSG
