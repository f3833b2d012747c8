/*
 * cs-zmq-source.h — a GSource for one ZeroMQ socket on the GLib main loop.
 *
 * ZMQ_FD is edge-triggered and a send can consume the edge, so prepare and check both
 * re-read ZMQ_EVENTS and dispatch drains with ZMQ_DONTWAIT up to a batch limit
 * (docs/architecture.md §8). Sockets and their sources stay on the main thread.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Called once per message received; the frames array holds GBytes (at most
 * CS_ZMQ_SOURCE_MAX_FRAMES of them) and is owned by the source (valid only during the call);
 * @n_frames is how many the message had, so that an error can say so. @user_id is the
 * "User-Id" the ZAP handler gave the peer (NULL without ZAP). */
typedef void (*CsZmqFunc)(
    void *socket, GPtrArray *frames, guint n_frames, const char *user_id, gpointer user_data);

/* Messages handled per dispatch before giving other sources their turn. */
#define CS_ZMQ_SOURCE_BATCH 64

/* Maximum frames of one message handed on; extra frames are read and dropped (the
 * protocol parser then sees only the first ones). */
#define CS_ZMQ_SOURCE_MAX_FRAMES 16

/* @socket is borrowed and must outlive the source. */
GSource *cs_zmq_source_new(void *socket, CsZmqFunc func, gpointer user_data);

G_END_DECLS
