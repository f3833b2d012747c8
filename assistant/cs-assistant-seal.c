/*
 * cs-assistant-seal.c — 电子印章: the e-seal on the inserted key and 文件盖章.
 *
 * With the key in the slot and logged in (cs_assistant_login), Key.ReadSeal gives the
 * seal (DER SESeal): its picture, name, holder and validity are shown, and whether it
 * verifies. Sealing a document is the key's SealDocument (the document sent as an fd,
 * signed on the token by the daemon); the signature file (DER SES_Signature) is saved
 * where the person chooses, by default beside the document as DOC.ses, and verified
 * against the document.
 *
 * Reading and verifying use the daemon's own seal code (daemon/pki/cs-seal.c), linked
 * here as `certseal seal show|verify` links it; the trusted roots are the CA certificates
 * of the daemon's state directory (--state-dir, by default the installed one), as the CLI
 * reads them.
 */
#include <string.h>

#include <openssl/x509.h>

#include "cs-assistant.h"
#include "cs-seal.h"

typedef struct {
	CsAssistant *a;
	CsKey *key;
	GtkWidget *which, *status, *login;
	GtkWidget *seal_box, *picture, *name, *holder, *validity, *es_id, *verdict;
	GtkWidget *sign, *sign_status, *sign_verdict;
	GBytes *seal; /* DER SESeal, as ReadSeal gave it */
	char *document;
} Seal;

static void read_seal(Seal *s);

static void
set_status(Seal *s, const char *text, gboolean error)
{
	gtk_label_set_text(GTK_LABEL(s->status), text != NULL ? text : "");
	if (error)
		gtk_widget_add_css_class(s->status, "error");
	else
		gtk_widget_remove_css_class(s->status, "error");
}

static void
set_verdict(GtkWidget *label, const char *text, gboolean good)
{
	gtk_label_set_text(GTK_LABEL(label), text);
	gtk_widget_remove_css_class(label, good ? "error" : "success");
	gtk_widget_add_css_class(label, good ? "success" : "error");
}

/* The trusted roots: the CA certificates of the daemon's state directory; NULL, and @why
 * set, when none can be read there. */
static CsSealTrust *
trust_new(Seal *s, char **why)
{
	CsSealTrust *trust = cs_seal_trust_new();

	if (cs_seal_trust_add_state_dir(trust, s->a->state_dir) == 0) {
		*why = g_strdup_printf(_("Cannot verify: no CA certificate can be read in %s "
					 "(start the assistant with --state-dir DIR)."),
				       s->a->state_dir);
		cs_seal_trust_free(trust);
		return NULL;
	}
	return trust;
}

/* A certificate's CN, else its whole subject, as UTF-8. */
static char *
holder_name(X509 *x)
{
	X509_NAME *subject = x != NULL ? X509_get_subject_name(x) : NULL;
	int at = subject != NULL ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
	unsigned char *utf8 = NULL;
	char *out;
	int len;

	if (subject == NULL)
		return g_strdup("?");
	if (at < 0) {
		char *line = X509_NAME_oneline(subject, NULL, 0);
		out = g_strdup(line != NULL ? line : "?");
		OPENSSL_free(line);
		return out;
	}
	len =
	    ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
	if (len < 0)
		return g_strdup("?");
	out = g_strndup((const char *)utf8, (gsize)len);
	OPENSSL_free(utf8);
	return out;
}

/* --- the seal ------------------------------------------------------------------------ */

static void
show_seal(Seal *s)
{
	gsize len = 0;
	const guint8 *der = g_bytes_get_data(s->seal, &len);
	g_autoptr(GError) error = NULL;
	g_autoptr(CsSealInfo) info = cs_seal_parse(der, len, &error);
	g_autoptr(CsSealTrust) trust = NULL;
	g_autoptr(GdkTexture) texture = NULL;
	g_autofree char *text = NULL;
	g_autofree char *from = NULL, *until = NULL;
	GString *holders;

	gtk_widget_set_visible(s->seal_box, TRUE);
	if (info == NULL) {
		g_autofree char *why =
		    g_strdup_printf(_("The key's seal cannot be read: %s"), error->message);
		set_status(s, why, TRUE);
		gtk_widget_set_visible(s->seal_box, FALSE);
		return;
	}
	texture = gdk_texture_new_from_bytes(info->picture, NULL);
	gtk_picture_set_paintable(GTK_PICTURE(s->picture), GDK_PAINTABLE(texture));
	gtk_widget_set_visible(s->picture, texture != NULL);

	text = g_strdup_printf(_("Seal name: %s"), info->name);
	gtk_label_set_text(GTK_LABEL(s->name), text);
	g_clear_pointer(&text, g_free);
	holders = g_string_new(NULL);
	for (guint i = 0; i < info->holders->len; i++) {
		g_autofree char *h = holder_name(g_ptr_array_index(info->holders, i));
		if (holders->len > 0)
			g_string_append(holders, _(", "));
		g_string_append(holders, h);
	}
	text = g_strdup_printf(_("Holder: %s"), holders->len > 0 ? holders->str : "—");
	g_string_free(holders, TRUE);
	gtk_label_set_text(GTK_LABEL(s->holder), text);
	g_clear_pointer(&text, g_free);
	from = cs_format_date((guint64)MAX(info->valid_start, 0));
	until = cs_format_date((guint64)MAX(info->valid_end, 0));
	text = g_strdup_printf(_("Valid from %s to %s"), from, until);
	gtk_label_set_text(GTK_LABEL(s->validity), text);
	g_clear_pointer(&text, g_free);
	text = g_strdup_printf(_("Seal code: %s"), info->es_id);
	gtk_label_set_text(GTK_LABEL(s->es_id), text);
	g_clear_pointer(&text, g_free);

	trust = trust_new(s, &text);
	if (trust == NULL) {
		set_verdict(s->verdict, text, FALSE);
	} else if (cs_seal_verify(der, len, trust, g_get_real_time() / G_USEC_PER_SEC, &error)) {
		set_verdict(s->verdict, _("Verified: the seal is valid."), TRUE);
	} else {
		text = g_strdup_printf(_("Not valid: %s"), error->message);
		set_verdict(s->verdict, text, FALSE);
	}
	gtk_widget_set_visible(s->sign, TRUE);
	set_status(s, NULL, FALSE);
}

static void
on_seal_read(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Seal *s = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, &error);
	g_autoptr(GVariant) seal = NULL;
	const guint8 *data;
	gsize len = 0;

	gtk_widget_set_sensitive(s->login, TRUE);
	if (reply == NULL) {
		const char *name = cs_error_name(error);
		g_autofree char *message = cs_error_text(error);
		g_autofree char *text = NULL;

		if (g_strcmp0(name, "NotFound") == 0)
			text = g_strdup(_("This key holds no e-seal."));
		else if (cs_error_is_key_removed(error))
			text = g_strdup(_("The key was removed. Insert it again and try again."));
		else
			text = g_strdup_printf(_("The certificate service refused: %s"), message);
		set_status(s, text, TRUE);
		return;
	}
	seal = g_variant_get_child_value(reply, 0);
	data = g_variant_get_fixed_array(seal, &len, 1);
	g_clear_pointer(&s->seal, g_bytes_unref);
	s->seal = g_bytes_new(data, len);
	gtk_widget_set_visible(s->login, FALSE);
	show_seal(s);
}

static void
read_seal(Seal *s)
{
	set_status(s, _("Reading the seal from the key…"), FALSE);
	gtk_widget_set_sensitive(s->login, FALSE);
	/* Not the generated call: it keeps no length for an "ay". */
	g_dbus_proxy_call(G_DBUS_PROXY(s->key), "ReadSeal", NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
			  on_seal_read, s);
}

static void
on_logged_in(CsAssistant *a, CsKey *key, gpointer user_data)
{
	read_seal(user_data);
}

static void
log_in_and_read(Seal *s)
{
	if (cs_key_get_logged_in(s->key)) {
		read_seal(s);
		return;
	}
	set_status(s, _("Log in with the key's password to read its seal."), FALSE);
	cs_assistant_login(s->a, s->key, G_CALLBACK(on_logged_in), s);
}

static void
on_login(GtkButton *button, gpointer user_data)
{
	log_in_and_read(user_data);
}

/* --- 文件盖章 ------------------------------------------------------------------------ */

typedef struct {
	Seal *s;
	GBytes *signature;
} Signed;

static void
on_signature_chosen(GtkNativeDialog *dialog, int response, gpointer user_data)
{
	Signed *d = user_data;
	Seal *s = d->s;
	g_autoptr(GFile) file = NULL;
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(CsSealTrust) trust = NULL;
	g_autoptr(GMappedFile) doc = NULL;
	g_autofree char *text = NULL;
	gsize len = 0;
	const guint8 *sig = g_bytes_get_data(d->signature, &len);

	if (response != GTK_RESPONSE_ACCEPT)
		goto out;
	file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
	path = file != NULL ? g_file_get_path(file) : NULL;
	if (path == NULL)
		goto out;
	if (!g_file_set_contents(path, (const char *)sig, (gssize)len, &error)) {
		text = g_strdup_printf(_("Cannot save the signature: %s"), error->message);
		gtk_label_set_text(GTK_LABEL(s->sign_status), text);
		goto out;
	}
	text = g_strdup_printf(_("The signature file was saved as %s."), path);
	gtk_label_set_text(GTK_LABEL(s->sign_status), text);
	g_clear_pointer(&text, g_free);
	/* The signature checked against the document, as a reader of both would. */
	trust = trust_new(s, &text);
	doc = trust != NULL ? g_mapped_file_new(s->document, FALSE, &error) : NULL;
	if (trust == NULL) {
		set_verdict(s->sign_verdict, text, FALSE);
	} else if (doc != NULL &&
		   cs_signature_verify(sig, len, (const guint8 *)g_mapped_file_get_contents(doc),
				       g_mapped_file_get_length(doc), trust, &error)) {
		set_verdict(s->sign_verdict, _("Verified: the signature matches the document."),
			    TRUE);
	} else {
		text = g_strdup_printf(_("Not valid: %s"), error->message);
		set_verdict(s->sign_verdict, text, FALSE);
	}
	gtk_widget_set_visible(s->sign_verdict, TRUE);
out:
	g_bytes_unref(d->signature);
	g_free(d);
	gtk_native_dialog_destroy(dialog);
	g_object_unref(dialog);
}

static void
on_sealed(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Seal *s = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    g_dbus_proxy_call_with_unix_fd_list_finish(G_DBUS_PROXY(source), NULL, result, &error);
	g_autoptr(GVariant) sig = NULL;
	g_autoptr(GFile) doc = NULL;
	g_autoptr(GFile) folder = NULL;
	g_autofree char *base = NULL;
	g_autofree char *name = NULL;
	GtkFileChooserNative *chooser;
	Signed *d;
	const guint8 *data;
	gsize len = 0;

	gtk_widget_set_sensitive(s->sign, TRUE);
	if (reply == NULL) {
		const char *err = cs_error_name(error);
		g_autofree char *message = cs_error_text(error);
		g_autofree char *text = NULL;

		if (g_strcmp0(err, "AccessDenied") == 0)
			text = g_strdup(_("Log in to the key first."));
		else if (cs_error_is_key_removed(error))
			text = g_strdup(_("The key was removed. Insert it again and try again."));
		else
			text = g_strdup_printf(_("Not sealed: %s"), message);
		gtk_label_set_text(GTK_LABEL(s->sign_status), text);
		return;
	}
	sig = g_variant_get_child_value(reply, 0);
	data = g_variant_get_fixed_array(sig, &len, 1);
	d = g_new0(Signed, 1);
	d->s = s;
	d->signature = g_bytes_new(data, len);
	gtk_label_set_text(GTK_LABEL(s->sign_status),
			   _("Sealed. Choose where to save the signature file."));

	chooser =
	    gtk_file_chooser_native_new(_("Save the signature file"), s->a->window,
					GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), _("_Cancel"));
	doc = g_file_new_for_path(s->document);
	folder = g_file_get_parent(doc);
	base = g_path_get_basename(s->document);
	name = g_strconcat(base, ".ses", NULL);
	if (folder != NULL)
		gtk_file_chooser_set_current_folder(GTK_FILE_CHOOSER(chooser), folder, NULL);
	gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(chooser), name);
	cs_chooser_show(chooser, G_CALLBACK(on_signature_chosen), d);
}

static void
on_document_chosen(GtkNativeDialog *dialog, int response, gpointer user_data)
{
	Seal *s = user_data;
	g_autofree char *path = NULL;
	g_autofree char *base = NULL;
	g_autofree char *why = NULL;
	g_autoptr(GUnixFDList) fds = cs_open_chosen_file(dialog, response, &path, &why);

	if (why != NULL)
		gtk_label_set_text(GTK_LABEL(s->sign_status), why);
	if (fds == NULL)
		goto out;
	g_free(s->document);
	s->document = g_strdup(path);
	base = g_path_get_basename(path);
	gtk_widget_set_sensitive(s->sign, FALSE);
	gtk_widget_set_visible(s->sign_verdict, FALSE);
	gtk_label_set_text(GTK_LABEL(s->sign_status), _("Sealing the document on the key…"));
	g_dbus_proxy_call_with_unix_fd_list(G_DBUS_PROXY(s->key), "SealDocument",
					    g_variant_new("(sh)", base, 0), G_DBUS_CALL_FLAGS_NONE,
					    120000, fds, NULL, on_sealed, s);
out:
	gtk_native_dialog_destroy(dialog);
	g_object_unref(dialog);
}

static void
on_sign(GtkButton *button, gpointer user_data)
{
	Seal *s = user_data;
	GtkFileChooserNative *chooser =
	    gtk_file_chooser_native_new(_("Choose the document to seal"), s->a->window,
					GTK_FILE_CHOOSER_ACTION_OPEN, _("_Seal"), _("_Cancel"));

	cs_chooser_show(chooser, G_CALLBACK(on_document_chosen), s);
}

/* --- the page ------------------------------------------------------------------------ */

static GtkWidget *
line(GtkWidget *box, const char *css_class)
{
	GtkWidget *label = cs_label_new("", css_class);

	gtk_box_append(GTK_BOX(box), label);
	return label;
}

static Seal *
seal_page(CsAssistant *a)
{
	Seal *s = g_new0(Seal, 1);
	GtkWidget *scroller;
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 24);
	GtkWidget *details = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	GtkWidget *back = cs_back_button_new(a);

	s->a = a;
	gtk_box_append(GTK_BOX(box), cs_label_new(_("E-seal"), "title-2"));
	s->which = line(box, "heading");
	s->status = line(box, NULL);
	s->login = gtk_button_new_with_label(_("Log in and read the seal"));
	gtk_widget_set_halign(s->login, GTK_ALIGN_START);
	g_signal_connect(s->login, "clicked", G_CALLBACK(on_login), s);
	gtk_box_append(GTK_BOX(box), s->login);

	s->seal_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	s->picture = gtk_picture_new();
	gtk_widget_set_size_request(s->picture, 160, 160);
	gtk_picture_set_can_shrink(GTK_PICTURE(s->picture), TRUE);
	gtk_accessible_update_property(GTK_ACCESSIBLE(s->picture), GTK_ACCESSIBLE_PROPERTY_LABEL,
				       _("Seal picture"), -1);
	gtk_box_append(GTK_BOX(row), s->picture);
	s->name = line(details, "heading");
	s->holder = line(details, NULL);
	s->validity = line(details, NULL);
	s->es_id = line(details, NULL);
	s->verdict = line(details, NULL);
	gtk_widget_set_valign(details, GTK_ALIGN_CENTER);
	gtk_widget_set_hexpand(details, TRUE);
	gtk_box_append(GTK_BOX(row), details);
	gtk_box_append(GTK_BOX(s->seal_box), row);
	gtk_box_append(GTK_BOX(s->seal_box), cs_label_new(_("Seal a document"), "title-4"));
	gtk_box_append(GTK_BOX(s->seal_box),
		       cs_label_new(_("Choose a document: the key seals it and the signature is "
				      "saved as a file beside it (DOC.ses), to send with the "
				      "document."),
				    NULL));
	s->sign = gtk_button_new_with_label(_("Choose a document and seal it…"));
	gtk_widget_add_css_class(s->sign, "suggested-action");
	gtk_widget_set_halign(s->sign, GTK_ALIGN_START);
	g_signal_connect(s->sign, "clicked", G_CALLBACK(on_sign), s);
	gtk_box_append(GTK_BOX(s->seal_box), s->sign);
	s->sign_status = line(s->seal_box, NULL);
	s->sign_verdict = line(s->seal_box, NULL);
	gtk_widget_set_visible(s->seal_box, FALSE);
	gtk_box_append(GTK_BOX(box), s->seal_box);

	gtk_widget_set_halign(back, GTK_ALIGN_END);
	gtk_box_append(GTK_BOX(box), back);
	scroller = cs_page_scroller(box, 18, 680);
	gtk_stack_add_named(a->stack, scroller, "seal");
	return s;
}

/* 电子印章 from the home page: the seal of the key inserted (or chosen in the list). */
void
cs_assistant_seal_start(CsAssistant *a)
{
	Seal *s = g_object_get_data(G_OBJECT(a->stack), "cs-seal");
	g_autoptr(CsKey) key = cs_assistant_chosen_key(a);
	g_autofree char *holder = NULL;
	g_autofree char *which = NULL;

	if (key == NULL)
		return;
	if (s == NULL) {
		s = seal_page(a);
		g_object_set_data(G_OBJECT(a->stack), "cs-seal", s);
	}
	g_clear_object(&s->key);
	s->key = g_object_ref(key);
	g_clear_pointer(&s->seal, g_bytes_unref);
	holder = cs_key_holder(key);
	which =
	    g_strdup_printf(_("Key %s (%s)"), cs_key_get_serial(key),
			    holder != NULL ? holder : cs_vendor_name(a, cs_key_get_vendor(key)));
	gtk_label_set_text(GTK_LABEL(s->which), which);
	gtk_widget_set_visible(s->seal_box, FALSE);
	gtk_widget_set_visible(s->login, TRUE);
	gtk_widget_set_visible(s->sign_verdict, FALSE);
	gtk_label_set_text(GTK_LABEL(s->sign_status), "");
	gtk_stack_set_visible_child_name(a->stack, "seal");
	/* Whether it holds a seal may show only once logged in: ReadSeal says. */
	if (cs_key_get_logged_in(key) && !cs_key_get_has_seal(key)) {
		set_status(s, _("This key holds no e-seal."), TRUE);
		return;
	}
	log_in_and_read(s);
}
