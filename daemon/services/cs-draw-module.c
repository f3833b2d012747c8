/*
 * cs-draw-module.c — the entry of the drawing module certseal-draw.so (see cs-draw.h): the
 * one symbol it exports. The drawing code it carries calls back into certseald for the
 * rest (errors, validation, amounts in words), as a flow plugin does.
 */
#include "cs-draw.h"
#include "cs-forms.h"
#include "cs-seal-picture.h"

static const CsDrawOps draw_ops = {
    .version = CS_DRAW_VERSION,
    .seal_picture = cs_seal_picture_render,
    .form = cs_forms_draw,
    .invoice = cs_invoice_render,
};

const CsDrawOps *
certseal_draw_ops(void)
{
	return &draw_ops;
}
