# /etc/fedmsg.d/kiskadee.py: run kiskadee's Anitya bridge inside fedmsg-hub.
#
# fedmsg-hub loads kiskadee.anitya.bridge:AnityaConsumer through its
# 'moksha.consumer' entry point and starts it when the key below is true.
# The bridge subscribes to Anitya's version updates
# (<topic_prefix>.anitya.project.version.update and .v2; the prefix is
# [anitya] topic_prefix in kiskadee's configuration) and forwards them to
# the monitor's intake socket ([service] intake).
#
# The bridge logs a summary of what it received, forwarded and dropped every
# [anitya] report_seconds: as a warning when it dropped messages, otherwise
# at info level, which the hub shows once a 'kiskadee' logger is added to
# the 'loggers' of /etc/fedmsg.d/logging.py:
#     kiskadee={"level": "INFO", "propagate": False, "handlers": ["console"]},
config = {
    "kiskadee.bridge.enabled": True,
    # kiskadee's configuration file; None follows kiskadee's own lookup:
    # $KISKADEE_CONFIG, else /etc/kiskadee/kiskadee.toml, else built-in defaults.
    "kiskadee.bridge.config": None,
}
