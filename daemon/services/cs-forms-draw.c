/*
 * cs-forms-draw.c — drawing the blank seal-sample forms (cs-forms.h), in the drawing module
 * (cs-draw.h).
 *
 * The applicant prints the form, stamps or signs inside the boxes, has it sealed and
 * uploads the scan as the `seal_form` material (docs/architecture.md §1.1). The forms are A4, drawn
 * in points; seal boxes are 45 mm square because an official seal is at most 42 mm across.
 * Text is laid out by pango so Chinese and Latin mix with one font description and
 * fontconfig fallback.
 */
#define G_LOG_DOMAIN "certseald"

#include "certseal/plugin.h"
#include "cs-forms.h"
#include "cs-pdf.h"

#define PAGE_W 595.28
#define PAGE_H 841.89
#define MARGIN 56.0
#define MM (72.0 / 25.4)

typedef struct {
	const char *label;    /* Chinese */
	const char *label_en; /* English, smaller */
} Row;

typedef struct {
	const char *caption;
	const char *caption_en;
	double w, h; /* points */
} Box;

typedef struct {
	const char *name;
	const char *title;
	const char *title_en;
	const Row *rows;
	guint n_rows;
	const Box *boxes;
	guint n_boxes;
	const char *const *notes;
	const char *sign_line;
} Form;

static const Row org_rows[] = {
    {"单位名称", "Organisation name"},
    {"统一社会信用代码", "Unified social credit code"},
    {"法定代表人", "Legal representative"},
    {"经办人及联系电话", "Handler and mobile phone"},
};

static const Box org_boxes[] = {
    {"单位公章", "Official seal", 45 * MM, 45 * MM},
    {"法定代表人名章", "Legal representative's seal", 45 * MM, 45 * MM},
    {"其他印章（选填）", "Other seal (optional)", 45 * MM, 45 * MM},
};

static const char *const org_notes[] = {
    "请在方框内清晰加盖印章，印迹完整、不重叠、不出框。Stamp each seal inside its box: complete, "
    "not overlapping, not crossing the border.",
    "请用黑色或蓝色签字笔填写。Fill in with a black or blue pen.",
    "加盖单位公章后扫描（不低于 300 dpi），以 PDF、PNG 或 JPEG 上传作为“印章采样表”。Scan at 300 "
    "dpi or more after sealing and upload it as PDF, PNG or JPEG.",
    NULL,
};

static const Row person_rows[] = {
    {"姓名", "Name"},
    {"公民身份号码", "Resident ID number"},
    {"联系电话", "Mobile phone"},
};

static const Box person_boxes[] = {
    {"手写签名 1", "Handwritten signature 1", 75 * MM, 30 * MM},
    {"手写签名 2", "Handwritten signature 2", 75 * MM, 30 * MM},
    {"手写签名 3", "Handwritten signature 3", 75 * MM, 30 * MM},
    {"个人印章（如有）", "Personal seal (if any)", 45 * MM, 45 * MM},
};

static const char *const person_notes[] = {
    "签名须由申请人本人亲笔书写，字迹清晰、不出框。The applicant signs in person, legibly, inside "
    "each box.",
    "签名或盖个人印章后，由所在单位加盖公章。After signing or stamping, have your organisation add "
    "its official seal.",
    "扫描（不低于 300 dpi）后以 PDF、PNG 或 JPEG 上传作为“个人签章采样表”。Scan at 300 dpi or more "
    "and upload it as PDF, PNG or JPEG.",
    NULL,
};

static const Form forms[] = {
    {"seal_form_org", "电子印章采样表（单位）", "Electronic seal sample form — organisation",
     org_rows, G_N_ELEMENTS(org_rows), org_boxes, G_N_ELEMENTS(org_boxes), org_notes,
     "单位（公章）：                              日期：        年      月      日"},
    {"seal_form_person", "个人签章采样表", "Personal signature and seal sample form", person_rows,
     G_N_ELEMENTS(person_rows), person_boxes, G_N_ELEMENTS(person_boxes), person_notes,
     "申请人签字：                    单位（公章）：                    日期：      年    月    "
     "日"},
};

/* Text in grey level @grey (0 black … 1 white); returns the height used. */
static double
draw_text(cairo_t *cr,
	  const char *text,
	  double x,
	  double y,
	  double width,
	  double size,
	  gboolean bold,
	  PangoAlignment align,
	  double grey)
{
	cairo_set_source_rgb(cr, grey, grey, grey);
	return cs_pdf_text(cr, text, x, y, width, size, bold, align);
}

static void
draw_rect(cairo_t *cr, double x, double y, double w, double h, double line)
{
	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_set_line_width(cr, line);
	cairo_rectangle(cr, x, y, w, h);
	cairo_stroke(cr);
}

/* The identity table: label cells on the left, blank cells to fill in. */
static double
draw_rows(cairo_t *cr, const Form *form, double y)
{
	const double label_w = 150, row_h = 34, width = PAGE_W - 2 * MARGIN;

	for (guint i = 0; i < form->n_rows; i++) {
		draw_rect(cr, MARGIN, y, label_w, row_h, 0.8);
		draw_rect(cr, MARGIN + label_w, y, width - label_w, row_h, 0.8);
		draw_text(cr, form->rows[i].label, MARGIN + 6, y + 4, label_w - 12, 11, TRUE,
			  PANGO_ALIGN_LEFT, 0);
		draw_text(cr, form->rows[i].label_en, MARGIN + 6, y + 19, label_w - 12, 7.5, FALSE,
			  PANGO_ALIGN_LEFT, 0.35);
		y += row_h;
	}
	return y;
}

/* Sample boxes, flowed left to right and wrapped. */
static double
draw_boxes(cairo_t *cr, const Form *form, double y)
{
	const double gap = 14, width = PAGE_W - 2 * MARGIN;
	double x = MARGIN, line_h = 0;

	for (guint i = 0; i < form->n_boxes; i++) {
		const Box *b = &form->boxes[i];
		if (x > MARGIN && x + b->w > MARGIN + width) {
			x = MARGIN;
			y += line_h + gap;
			line_h = 0;
		}
		draw_rect(cr, x, y, b->w, b->h, 1.2);
		draw_text(cr, b->caption, x, y + b->h + 4, b->w, 10, TRUE, PANGO_ALIGN_CENTER, 0);
		draw_text(cr, b->caption_en, x, y + b->h + 18, b->w, 7.5, FALSE, PANGO_ALIGN_CENTER,
			  0.35);
		line_h = MAX(line_h, b->h + 30);
		x += b->w + gap;
	}
	return y + line_h;
}

static void
draw_form(cairo_t *cr, const Form *form)
{
	const double width = PAGE_W - 2 * MARGIN;
	double y = MARGIN;

	y += draw_text(cr, form->title, MARGIN, y, width, 20, TRUE, PANGO_ALIGN_CENTER, 0);
	y += draw_text(cr, form->title_en, MARGIN, y + 2, width, 10, FALSE, PANGO_ALIGN_CENTER,
		       0.35);
	y = draw_rows(cr, form, y + 24);
	y += 18;
	y += draw_text(cr, "印章 / 签名采样 Samples", MARGIN, y, width, 12, TRUE, PANGO_ALIGN_LEFT,
		       0);
	y = draw_boxes(cr, form, y + 8);
	y += 16;
	y += draw_text(cr, "说明 Notes", MARGIN, y, width, 11, TRUE, PANGO_ALIGN_LEFT, 0);
	for (guint i = 0; form->notes[i] != NULL; i++) {
		g_autofree char *note = g_strdup_printf("%u. %s", i + 1, form->notes[i]);
		y += 4 + draw_text(cr, note, MARGIN, y + 4, width, 9, FALSE, PANGO_ALIGN_LEFT, 0.1);
	}
	draw_text(cr, form->sign_line, MARGIN, PAGE_H - MARGIN - 60, width, 11, FALSE,
		  PANGO_ALIGN_LEFT, 0);
	draw_text(cr, "本表由 CA 证书与电子签章共享平台生成，空白表格可重复下载打印。", MARGIN,
		  PAGE_H - MARGIN - 12, width, 7.5, FALSE, PANGO_ALIGN_CENTER, 0.5);
}

static void
draw_form_cb(cairo_t *cr, gconstpointer data)
{
	draw_form(cr, data);
}

GBytes *
cs_forms_draw(const char *name, GError **error)
{
	for (guint i = 0; i < G_N_ELEMENTS(forms); i++) {
		if (g_strcmp0(forms[i].name, name) == 0)
			return cs_pdf_render(PAGE_W, PAGE_H, forms[i].title, draw_form_cb,
					     &forms[i], error);
	}
	g_set_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "name: no form '%s'", name);
	return NULL;
}
