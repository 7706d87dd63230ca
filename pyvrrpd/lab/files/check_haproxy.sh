#!/bin/bash
HAPROXY_STATUS=$(ps ax | grep -w [h]aproxy)

if [ "${HAPROXY_STATUS}" == "" ]; then
      echo "HAProxy is not running"
      killall keepalived
else
      echo "HAProxy is running"
fi
