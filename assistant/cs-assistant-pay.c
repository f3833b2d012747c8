/*
 * cs-assistant-pay.c — the payment step (付款结算) every page of an order shares: the
 * channels, the QR code drawn from the daemon's payload (StartPayment) with its expiry
 * counting down, and the daemon's refusal when there is one. The payment itself is
 * confirmed by the cashier; the order's State says when it is done.
 */
#include <qrencode.h>
#include <string.h>

#include "cs-assistant.h"

typedef struct {
	CsAssistant *a;
	CsOrder *order;
	GtkWidget *qr, *expiry, *error;
	guint64 expires; /* of the payment QR code */
	char *amount;
	guint tick;
} Payment;

static void
stop_tick(Payment *pay)
{
	if (pay->tick != 0)
		g_source_remove(pay->tick);
	pay->tick = 0;
}

static void
payment_free(gpointer data)
{
	Payment *pay = data;

	stop_tick(pay);
	g_clear_object(&pay->order);
	g_free(pay->amount);
	g_free(pay);
}

static gboolean
tick_expiry(gpointer user_data)
{
	Payment *pay = user_data;
	gint64 left = (gint64)pay->expires - g_get_real_time() / G_USEC_PER_SEC;
	g_autofree char *text = NULL;

	if (left <= 0) {
		gtk_label_set_text(GTK_LABEL(pay->expiry),
				   _("The code has expired: choose a payment method again."));
		gtk_widget_set_visible(pay->qr, FALSE);
		pay->tick = 0;
		return G_SOURCE_REMOVE;
	}
	text = g_strdup_printf(_("Scan the code to pay %s yuan; it expires in %d:%02d."),
			       pay->amount, (int)(left / 60), (int)(left % 60));
	gtk_label_set_text(GTK_LABEL(pay->expiry), text);
	return G_SOURCE_CONTINUE;
}

/* The QR code of @payload as a texture a GtkPicture shows, NULL when it cannot be encoded. */
GdkTexture *
cs_qr_texture(const char *payload)
{
	QRcode *qr = QRcode_encodeString(payload, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	const int scale = 6, margin = 4;
	g_autoptr(GBytes) bytes = NULL;
	guint8 *pixels;
	gsize size, stride;

	if (qr == NULL)
		return NULL;
	size = (gsize)(qr->width + 2 * margin) * (gsize)scale;
	stride = size * 3; /* R8G8B8: GTK 4.8 has no grey format */
	pixels = g_malloc(stride * size);
	memset(pixels, 0xff, stride * size);
	for (int y = 0; y < qr->width; y++) {
		for (int x = 0; x < qr->width; x++) {
			if (!(qr->data[y * qr->width + x] & 1))
				continue;
			for (int dy = 0; dy < scale; dy++)
				memset(pixels + ((gsize)((y + margin) * scale + dy)) * stride +
					   (gsize)((x + margin) * scale) * 3,
				       0, (gsize)scale * 3);
		}
	}
	QRcode_free(qr);
	bytes = g_bytes_new_take(pixels, stride * size);
	return gdk_memory_texture_new((int)size, (int)size, GDK_MEMORY_R8G8B8, bytes, stride);
}

static void
on_payment(GObject *source, GAsyncResult *result, gpointer user_data)
{
	GtkWidget *box = user_data;
	Payment *pay = g_object_get_data(G_OBJECT(box), "cs-payment");
	g_autoptr(GError) error = NULL;
	g_autofree char *payload = NULL;
	g_autoptr(GdkTexture) texture = NULL;
	guint64 expires = 0;
	guint64 fen;

	if (!cs_order_call_start_payment_finish(CS_ORDER(source), &payload, &expires, result,
						&error)) {
		g_autofree char *text = cs_not_accepted_text(error);
		if (pay != NULL) {
			gtk_label_set_text(GTK_LABEL(pay->error), text);
			gtk_widget_set_visible(pay->error, TRUE);
		}
		g_object_unref(box);
		return;
	}
	if (pay == NULL || pay->order == NULL) {
		g_object_unref(box);
		return;
	}
	gtk_widget_set_visible(pay->error, FALSE);
	pay->expires = expires;
	texture = cs_qr_texture(payload);
	gtk_picture_set_paintable(GTK_PICTURE(pay->qr), GDK_PAINTABLE(texture));
	gtk_widget_set_visible(pay->qr, texture != NULL);
	fen = cs_order_get_amount_fen(pay->order);
	g_free(pay->amount);
	pay->amount =
	    g_strdup_printf("%" G_GUINT64_FORMAT ".%02" G_GUINT64_FORMAT, fen / 100, fen % 100);
	if (pay->tick == 0)
		pay->tick = g_timeout_add_seconds(1, tick_expiry, pay);
	tick_expiry(pay);
	g_object_unref(box);
}

static void
on_pay(GtkButton *button, gpointer user_data)
{
	GtkWidget *box = user_data;
	Payment *pay = g_object_get_data(G_OBJECT(box), "cs-payment");

	if (pay->order == NULL)
		return;
	cs_order_call_start_payment(pay->order, g_object_get_data(G_OBJECT(button), "cs-channel"),
				    NULL, on_payment, g_object_ref(box));
}

static GtkWidget *
pay_button(GtkWidget *box, const char *label, const char *channel)
{
	GtkWidget *button = gtk_button_new_with_label(label);

	g_object_set_data(G_OBJECT(button), "cs-channel", (gpointer)channel);
	g_signal_connect(button, "clicked", G_CALLBACK(on_pay), box);
	return button;
}

/* The payment step: its title, a button per channel, the QR code and its expiry. */
GtkWidget *
cs_payment_new(CsAssistant *a)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	Payment *pay = g_new0(Payment, 1);

	pay->a = a;
	g_object_set_data_full(G_OBJECT(box), "cs-payment", pay, payment_free);
	gtk_box_append(GTK_BOX(box), cs_label_new(_("Payment"), "title-4"));
	gtk_box_append(GTK_BOX(row), pay_button(box, _("Alipay"), "alipay"));
	gtk_box_append(GTK_BOX(row), pay_button(box, _("WeChat Pay"), "wechat"));
	gtk_box_append(GTK_BOX(row), pay_button(box, _("Test cashier"), "sandbox"));
	gtk_box_append(GTK_BOX(box), row);
	pay->qr = gtk_picture_new();
	gtk_picture_set_can_shrink(GTK_PICTURE(pay->qr), FALSE);
	gtk_widget_set_halign(pay->qr, GTK_ALIGN_START);
	gtk_accessible_update_property(GTK_ACCESSIBLE(pay->qr), GTK_ACCESSIBLE_PROPERTY_LABEL,
				       _("Payment QR code"), -1);
	gtk_widget_set_visible(pay->qr, FALSE);
	gtk_box_append(GTK_BOX(box), pay->qr);
	pay->expiry = cs_label_new("", NULL);
	gtk_box_append(GTK_BOX(box), pay->expiry);
	pay->error = cs_label_new("", "error");
	gtk_widget_set_visible(pay->error, FALSE);
	gtk_box_append(GTK_BOX(box), pay->error);
	return box;
}

/* The order the payment step pays for; NULL (or another order) clears the QR code. */
void
cs_payment_set_order(GtkWidget *payment, CsOrder *order)
{
	Payment *pay = g_object_get_data(G_OBJECT(payment), "cs-payment");

	if (pay->order == order)
		return;
	stop_tick(pay);
	g_clear_object(&pay->order);
	if (order != NULL)
		pay->order = g_object_ref(order);
	gtk_widget_set_visible(pay->qr, FALSE);
	gtk_label_set_text(GTK_LABEL(pay->expiry), "");
	gtk_widget_set_visible(pay->error, FALSE);
}
