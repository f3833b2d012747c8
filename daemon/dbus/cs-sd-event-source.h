/*
 * cs-sd-event-source.h — run an sd_event loop inside the GLib main loop.
 */
#pragma once

#include <glib.h>
#include <systemd/sd-event.h>

G_BEGIN_DECLS

/* A GSource that polls sd_event_get_fd(@event) and dispatches @event; holds a ref. */
GSource *cs_sd_event_source_new(sd_event *event);

G_END_DECLS
