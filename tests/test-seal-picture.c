/*
 * test-seal-picture.c — the seal pictures the platform draws for orders without a
 * seal_image: PNGs of the right size in mm and pixels, transparent around the seal, red
 * ink only, and the parts where the seal's kind puts them (a ring, a star in the middle
 * and the name on the upper arc; a frame and the name in two columns).
 */
#include <cairo.h>
#include <math.h>
#include <string.h>

#include "certseal/plugin.h"
#include "cs-seal-picture.h"
#include "cs-seal.h"

typedef struct {
	cairo_surface_t *surface;
	int width, height, stride;
	const guint8 *data;
} Picture;

typedef struct {
	GBytes *png;
	gsize offset;
} PngReader;

static cairo_status_t
read_png(void *closure, unsigned char *data, unsigned int length)
{
	PngReader *r = closure;
	gsize size = 0;
	const guint8 *bytes = g_bytes_get_data(r->png, &size);

	if (r->offset + length > size)
		return CAIRO_STATUS_READ_ERROR;
	memcpy(data, bytes + r->offset, length);
	r->offset += length;
	return CAIRO_STATUS_SUCCESS;
}

/* Decode @png (it must be a PNG, ARGB) and check its size: @mm square at the declared
 * resolution. */
static Picture
decode(GBytes *png, guint width_mm, guint height_mm, guint mm)
{
	PngReader reader = {png, 0};
	Picture p;

	g_assert_cmpuint(g_bytes_get_size(png), >, 8);
	g_assert_cmpmem(g_bytes_get_data(png, NULL), 8, "\x89PNG\r\n\x1a\n", 8);
	g_assert_cmpuint(g_bytes_get_size(png), <=, CS_SEAL_PICTURE_MAX_SIZE);
	g_assert_cmpuint(width_mm, ==, mm);
	g_assert_cmpuint(height_mm, ==, mm);
	p.surface = cairo_image_surface_create_from_png_stream(read_png, &reader);
	g_assert_cmpint(cairo_surface_status(p.surface), ==, CAIRO_STATUS_SUCCESS);
	g_assert_cmpint(cairo_image_surface_get_format(p.surface), ==, CAIRO_FORMAT_ARGB32);
	p.width = cairo_image_surface_get_width(p.surface);
	p.height = cairo_image_surface_get_height(p.surface);
	p.stride = cairo_image_surface_get_stride(p.surface);
	p.data = cairo_image_surface_get_data(p.surface);
	/* The pixels have the proportions the seal declares, at the declared resolution. */
	g_assert_cmpint(p.width, ==, (int)(width_mm * CS_SEAL_PICTURE_PX_PER_MM));
	g_assert_cmpint(p.height, ==, (int)(height_mm * CS_SEAL_PICTURE_PX_PER_MM));
	g_assert_cmpint(p.width * (int)height_mm, ==, p.height * (int)width_mm);
	return p;
}

static guint32
pixel(const Picture *p, int x, int y)
{
	return *(const guint32 *)(p->data + (gsize)y * (gsize)p->stride + (gsize)x * 4);
}

/* Inked and red: mostly opaque, red well above green and blue (premultiplied ARGB). */
static gboolean
is_red(guint32 px)
{
	guint a = px >> 24, r = (px >> 16) & 0xff, g = (px >> 8) & 0xff, b = px & 0xff;

	return a >= 128 && r >= 100 && r >= 4 * g && r >= 4 * b;
}

/* Red pixels in the rectangle [x0, x1) × [y0, y1) whose distance from (@cx, @cy) is in
 * [@r0, @r1) (px). */
static guint
count_red(
    const Picture *p, int x0, int y0, int x1, int y1, double cx, double cy, double r0, double r1)
{
	guint n = 0;

	for (int y = y0; y < y1; y++)
		for (int x = x0; x < x1; x++) {
			double d = hypot(x + 0.5 - cx, y + 0.5 - cy);
			if (d >= r0 && d < r1 && is_red(pixel(p, x, y)))
				n++;
		}
	return n;
}

/* Red pixels at a distance in [@r0, @r1) from the centre of a square picture and at an
 * angle in [@a0, @a1) degrees, clockwise from straight up. */
static guint
count_red_sector(const Picture *p, double r0, double r1, double a0, double a1)
{
	double c = p->width / 2.0;
	guint n = 0;

	for (int y = 0; y < p->height; y++)
		for (int x = 0; x < p->width; x++) {
			double dx = x + 0.5 - c, dy = y + 0.5 - c;
			double d = hypot(dx, dy);
			double a = atan2(dx, -dy) * 180 / G_PI;
			if (a < 0)
				a += 360;
			if (d >= r0 && d < r1 && a >= a0 && a < a1 && is_red(pixel(p, x, y)))
				n++;
		}
	return n;
}

/* Every inked pixel is red ink (no other colour), and there is ink. */
static void
assert_red_ink_only(const Picture *p)
{
	guint inked = 0, red = 0;

	for (int y = 0; y < p->height; y++)
		for (int x = 0; x < p->width; x++) {
			guint32 px = pixel(p, x, y);
			guint a = px >> 24, r = (px >> 16) & 0xff, g = (px >> 8) & 0xff,
			      b = px & 0xff;
			if (a == 0)
				continue;
			inked++;
			red += is_red(px);
			/* Premultiplied: even a faint edge pixel is red-dominated. */
			g_assert_cmpuint(r * 2, >=, g * 4 + b * 4);
		}
	g_assert_cmpuint(red, >, (guint)(p->width * p->height / 50));
	g_assert_cmpuint(inked, <, (guint)(p->width * p->height));
}

static void
test_org_round_seal(void)
{
	g_autoptr(GError) error = NULL;
	guint w = 0, h = 0;
	g_autoptr(GBytes) png =
	    cs_seal_picture_render("厦门示例科技有限公司", TRUE, &w, &h, &error);
	Picture p;
	double c, px = CS_SEAL_PICTURE_PX_PER_MM;
	guint upper, lower;

	g_assert_no_error(error);
	p = decode(png, w, h, CS_SEAL_PICTURE_ORG_MM);
	c = p.width / 2.0;
	assert_red_ink_only(&p);
	/* Transparent outside the ring: the corners. */
	g_assert_cmpuint(pixel(&p, 0, 0) >> 24, ==, 0);
	g_assert_cmpuint(pixel(&p, p.width - 1, p.height - 1) >> 24, ==, 0);
	g_assert_cmpuint(count_red(&p, 0, 0, p.width, p.height, c, c, c, 2 * c), ==, 0);
	/* The ring: red all round, near the edge. */
	for (int deg = 0; deg < 360; deg += 15) {
		double a = deg * G_PI / 180;
		double r = c - 0.9 * px;
		g_assert_true(is_red(pixel(&p, (int)(c + r * cos(a)), (int)(c + r * sin(a)))));
	}
	/* The star: its middle is red, and it spans the middle (about 7 mm), not more. */
	g_assert_true(is_red(pixel(&p, (int)c, (int)c)));
	g_assert_true(is_red(pixel(&p, (int)c, (int)(c - 5 * px))));
	g_assert_cmpuint(count_red(&p, 0, 0, p.width, p.height, c, c, 7.5 * px, 10 * px), ==, 0);
	/* The name: along the upper arc between the star and the ring, on both sides of the
	 * top, and nothing at the bottom. */
	upper = count_red_sector(&p, 10 * px, c - 1.6 * px, 270, 360) +
		count_red_sector(&p, 10 * px, c - 1.6 * px, 0, 90);
	lower = count_red_sector(&p, 10 * px, c - 1.6 * px, 140, 220);
	g_assert_cmpuint(count_red_sector(&p, 10 * px, c - 1.6 * px, 300, 360), >,
			 (guint)(px * px * 10));
	g_assert_cmpuint(count_red_sector(&p, 10 * px, c - 1.6 * px, 0, 60), >,
			 (guint)(px * px * 10));
	g_assert_cmpuint(upper, >, (guint)(px * px * 40));
	g_assert_cmpuint(lower, ==, 0);
	cairo_surface_destroy(p.surface);
}

static void
test_person_square_seal(void)
{
	g_autoptr(GError) error = NULL;
	guint w = 0, h = 0;
	g_autoptr(GBytes) png = cs_seal_picture_render("张三", FALSE, &w, &h, &error);
	g_autoptr(GBytes) other = NULL;
	Picture p;
	double px = CS_SEAL_PICTURE_PX_PER_MM;
	int side, in, mid;
	guint right, left, top, bottom;

	g_assert_no_error(error);
	p = decode(png, w, h, CS_SEAL_PICTURE_PERSON_MM);
	side = p.width;
	assert_red_ink_only(&p);
	/* The frame: red along each side, half a millimetre in. */
	for (int i = (int)px; i < side - (int)px; i += 7) {
		int e = (int)(0.6 * px);
		g_assert_true(is_red(pixel(&p, i, e)));
		g_assert_true(is_red(pixel(&p, i, side - 1 - e)));
		g_assert_true(is_red(pixel(&p, e, i)));
		g_assert_true(is_red(pixel(&p, side - 1 - e, i)));
	}
	/* Two columns of characters inside the frame, both filled top and bottom (张三之印),
	 * with a gap down the middle. */
	in = (int)(1.6 * px);
	mid = side / 2;
	right = count_red(&p, mid + 2, in, side - in, side - in, 0, 0, 0, G_MAXDOUBLE);
	left = count_red(&p, in, in, mid - 2, side - in, 0, 0, 0, G_MAXDOUBLE);
	top = count_red(&p, in, in, side - in, mid - 2, 0, 0, 0, G_MAXDOUBLE);
	bottom = count_red(&p, in, mid + 2, side - in, side - in, 0, 0, 0, G_MAXDOUBLE);
	g_assert_cmpuint(right, >, (guint)(px * px * 8));
	g_assert_cmpuint(left, >, (guint)(px * px * 8));
	g_assert_cmpuint(top, >, (guint)(px * px * 8));
	g_assert_cmpuint(bottom, >, (guint)(px * px * 8));
	g_assert_cmpuint(count_red(&p, mid - 2, in, mid + 2, side - in, 0, 0, 0, G_MAXDOUBLE), <,
			 (guint)(4 * (side - 2 * in) / 10));
	cairo_surface_destroy(p.surface);
	/* Another name is another picture. */
	other = cs_seal_picture_render("李四", FALSE, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_false(g_bytes_equal(png, other));
}

static void
test_long_names_still_fit(void)
{
	const char *names[] = {"中国厦门市思明区某某某某某某某某某大型科技股份有限公司", "ABC",
			       "阿卜杜热合曼·麦麦提", "一"};

	for (guint i = 0; i < G_N_ELEMENTS(names); i++)
		for (int org = 0; org < 2; org++) {
			g_autoptr(GError) error = NULL;
			guint w = 0, h = 0;
			g_autoptr(GBytes) png =
			    cs_seal_picture_render(names[i], org, &w, &h, &error);
			Picture p;

			g_assert_no_error(error);
			p = decode(png, w, h,
				   org ? CS_SEAL_PICTURE_ORG_MM : CS_SEAL_PICTURE_PERSON_MM);
			assert_red_ink_only(&p);
			g_assert_cmpuint(pixel(&p, 0, 0) >> 24, ==, 0);
			cairo_surface_destroy(p.surface);
		}
}

static void
test_refuses_bad_names(void)
{
	const char *bad[] = {"", "a\nb", "x\u202ey", NULL};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) png = cs_seal_picture_render(bad[i], TRUE, NULL, NULL, &error);

		g_assert_null(png);
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_assert_true(g_str_has_prefix(error->message, "name: "));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/seal-picture/org/round-42mm-star-in-the-middle-name-on-the-upper-arc",
			test_org_round_seal);
	g_test_add_func("/seal-picture/person/square-18mm-name-in-two-columns",
			test_person_square_seal);
	g_test_add_func("/seal-picture/long-and-short-names-still-fit", test_long_names_still_fit);
	g_test_add_func("/seal-picture/refuses-empty-or-unprintable-names", test_refuses_bad_names);
	return g_test_run();
}
