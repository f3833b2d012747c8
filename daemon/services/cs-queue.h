/*
 * cs-queue.h — the order work queue: the office tasks the flows' states wait for.
 *
 * Whenever an order enters a state that a transition with an office service leaves, a
 * task of that service is queued (one open task per order and service), and tasks made
 * for a state the order has left are ended. A DONE of such a task takes the transition —
 * the one its result's "decision" names when several of the service leave the state —
 * with the result keys the transition declares as its parameters, in the same
 * transaction that ends the task, and only while the order is still in the state the task
 * was made for.
 */
#pragma once

#include "cs-engine.h"
#include "cs-tasks.h"

G_BEGIN_DECLS

typedef struct _CsQueue CsQueue;

/* Registers the loaded flows' services with @tasks and queues the tasks of orders waiting
 * for the office that have none (an order that entered an office state just before a
 * crash). */
CsQueue *cs_queue_new(CsEngine *engine, CsTasks *tasks, GError **error);
void cs_queue_free(CsQueue *queue);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsQueue, cs_queue_free)

G_END_DECLS
