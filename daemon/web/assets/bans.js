// bans.js: the status page (daemon/web/README.md).
