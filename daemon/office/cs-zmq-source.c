/*
 * cs-zmq-source.c — ZeroMQ socket readiness as a GSource.
 *
 * Invariants:
 * - prepare and check read ZMQ_EVENTS every time: after any send or receive on the socket
 *   the edge on ZMQ_FD may already have been consumed, so polling the fd alone could sleep
 *   while messages wait (flux-core's ev_zmq does the same).
 * - dispatch receives at most CS_ZMQ_SOURCE_BATCH messages, each with ZMQ_DONTWAIT, so
 *   a flood on one socket does not starve the rest of the loop; if more are waiting the
 *   next prepare sees ZMQ_POLLIN and returns TRUE at once.
 * - a message of more than CS_ZMQ_SOURCE_MAX_FRAMES frames is read whole (ZeroMQ delivers
 *   all frames of a message atomically) but only its first frames are handed on.
 */
#define G_LOG_DOMAIN "certseald"

#include <zmq.h>

#include "cs-zmq-source.h"

typedef struct {
	GSource source;
	void *socket;
	gpointer fd_tag;
} CsZmqSource;

static gboolean
socket_readable(void *socket)
{
	int events = 0;
	size_t len = sizeof(events);

	if (zmq_getsockopt(socket, ZMQ_EVENTS, &events, &len) != 0)
		return FALSE;
	return (events & ZMQ_POLLIN) != 0;
}

static gboolean
zmq_source_prepare(GSource *source, gint *timeout)
{
	CsZmqSource *self = (CsZmqSource *)source;

	*timeout = -1;
	return socket_readable(self->socket);
}

static gboolean
zmq_source_check(GSource *source)
{
	CsZmqSource *self = (CsZmqSource *)source;

	return socket_readable(self->socket);
}

/* One whole message, or NULL when none is waiting. */
static GPtrArray *
receive_message(void *socket, char **user_id, guint *n_frames)
{
	g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	int more = 1;

	while (more) {
		zmq_msg_t msg;
		size_t len = sizeof(more);

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, socket, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&msg);
			return frames->len > 0 ? g_steal_pointer(&frames) : NULL;
		}
		if (*user_id == NULL) {
			const char *uid = zmq_msg_gets(&msg, "User-Id");
			if (uid != NULL)
				*user_id = g_strdup(uid);
		}
		if (*n_frames < G_MAXUINT)
			(*n_frames)++;
		if (frames->len < CS_ZMQ_SOURCE_MAX_FRAMES)
			g_ptr_array_add(frames,
					g_bytes_new(zmq_msg_data(&msg), zmq_msg_size(&msg)));
		zmq_msg_close(&msg);
		if (zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &len) != 0)
			more = 0;
	}
	return g_steal_pointer(&frames);
}

static gboolean
zmq_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	CsZmqSource *self = (CsZmqSource *)source;
	CsZmqFunc func = (CsZmqFunc)(gpointer)callback;

	for (guint i = 0; i < CS_ZMQ_SOURCE_BATCH; i++) {
		g_autofree char *user_id = NULL;
		guint n_frames = 0;
		g_autoptr(GPtrArray) frames = receive_message(self->socket, &user_id, &n_frames);
		if (frames == NULL)
			break;
		if (func != NULL)
			func(self->socket, frames, n_frames, user_id, user_data);
	}
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs zmq_source_funcs = {
    .prepare = zmq_source_prepare,
    .check = zmq_source_check,
    .dispatch = zmq_source_dispatch,
};

GSource *
cs_zmq_source_new(void *socket, CsZmqFunc func, gpointer user_data)
{
	GSource *source = g_source_new(&zmq_source_funcs, sizeof(CsZmqSource));
	CsZmqSource *self = (CsZmqSource *)source;
	int fd = -1;
	size_t len = sizeof(fd);

	self->socket = socket;
	if (zmq_getsockopt(socket, ZMQ_FD, &fd, &len) == 0)
		self->fd_tag = g_source_add_unix_fd(source, fd, G_IO_IN);
	g_source_set_callback(source, (GSourceFunc)(gpointer)func, user_data, NULL);
	g_source_set_name(source, "zeromq");
	return source;
}
