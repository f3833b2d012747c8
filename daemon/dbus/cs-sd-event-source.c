/*
 * cs-sd-event-source.c — an sd_event loop as a GSource.
 *
 * sd-bus objects live on an sd_event loop (sd_bus_attach_event); that loop runs inside
 * GLib's as one source on sd_event_get_fd(): prepare arms it, check asks whether anything
 * is pending without blocking, dispatch runs one iteration. GLib may call prepare again
 * without check in between (when a higher-priority source was ready), which sd-event
 * refuses while ARMED, and may skip dispatch after a TRUE prepare, leaving it PENDING;
 * both are handled from the current state instead of calling sd_event_prepare again.
 */
#include "cs-sd-event-source.h"

typedef struct {
	GSource source;
	sd_event *event;
	gpointer fd_tag;
} SdEventSource;

static gboolean
sd_event_source_prepare(GSource *source, gint *timeout)
{
	SdEventSource *s = (SdEventSource *)source;

	*timeout = -1;
	switch (sd_event_get_state(s->event)) {
	case SD_EVENT_ARMED:
		return FALSE;
	case SD_EVENT_PENDING:
		return TRUE;
	default:
		return sd_event_prepare(s->event) > 0;
	}
}

static gboolean
sd_event_source_check(GSource *source)
{
	SdEventSource *s = (SdEventSource *)source;

	if (sd_event_get_state(s->event) == SD_EVENT_PENDING)
		return TRUE;
	if (sd_event_get_state(s->event) != SD_EVENT_ARMED)
		return FALSE;
	return sd_event_wait(s->event, 0) > 0;
}

static gboolean
sd_event_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	SdEventSource *s = (SdEventSource *)source;
	int r = sd_event_dispatch(s->event);

	if (r < 0)
		g_warning("sd-event dispatch failed: %s", g_strerror(-r));
	return G_SOURCE_CONTINUE;
}

static void
sd_event_source_finalize(GSource *source)
{
	SdEventSource *s = (SdEventSource *)source;

	sd_event_unref(s->event);
}

static GSourceFuncs sd_event_source_funcs = {
    .prepare = sd_event_source_prepare,
    .check = sd_event_source_check,
    .dispatch = sd_event_source_dispatch,
    .finalize = sd_event_source_finalize,
};

GSource *
cs_sd_event_source_new(sd_event *event)
{
	GSource *source = g_source_new(&sd_event_source_funcs, sizeof(SdEventSource));
	SdEventSource *s = (SdEventSource *)source;

	s->event = sd_event_ref(event);
	s->fd_tag = g_source_add_unix_fd(source, sd_event_get_fd(event), G_IO_IN);
	g_source_set_name(source, "sd-event");
	return source;
}
