/*
 * cs-seal-picture.h — the picture of an e-seal drawn by the platform, for an order that
 * attached no seal_image (docs/architecture.md §1.1): a red official seal on a transparent
 * background, as a PNG for SES_ESPictrueInfo (docs/architecture.md §9).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The seals' sizes in mm, and how many pixels the PNG has per mm (about 300 dpi). */
#define CS_SEAL_PICTURE_ORG_MM 42
#define CS_SEAL_PICTURE_PERSON_MM 18
#define CS_SEAL_PICTURE_PX_PER_MM 12

/*
 * Draw the seal of @name (1–64 printable characters; InvalidInput naming "name"
 * otherwise) and return it as a PNG with a transparent background:
 * - @org: a round seal of CS_SEAL_PICTURE_ORG_MM, a red ring, a five-pointed star in the
 *   middle and the name along the upper arc, each character upright towards the rim;
 * - a person: a square seal of CS_SEAL_PICTURE_PERSON_MM, a red frame and the name in two
 *   columns read right to left, top to bottom; a name of one to three characters is
 *   completed the customary way (一 → 一印, 张三 → 张三之印, 王小明 → 王小明印).
 * The picture's size in mm goes to @width_mm and @height_mm (either may be NULL); the
 * PNG has CS_SEAL_PICTURE_PX_PER_MM pixels per mm.
 */
GBytes *cs_seal_picture_render(
    const char *name, gboolean org, guint *width_mm, guint *height_mm, GError **error);

G_END_DECLS
