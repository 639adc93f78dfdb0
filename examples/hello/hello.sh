#!/bin/sh
# The image's command: the machine it runs on, and the platform it was built for.
echo "hello from $(uname -m) (built for $(cat /etc/hello/platform), $(cat /etc/hello/built-on))"
