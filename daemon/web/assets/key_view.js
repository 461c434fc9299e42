// key_view.js: the status page (daemon/web/README.md).
