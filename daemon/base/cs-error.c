/*
 * cs-error.c — the error domain shared by every layer, and small helpers of the SDK's
 * enums (subject types and the fields that name and number a subject).
 */
#include "certseal/plugin.h"
#include "cs-request.h"

G_DEFINE_QUARK(certseal - error - quark, cs_error)

static const char *const error_names[CS_ERROR_LAST] = {
    [CS_ERROR_INTERNAL] = "org.certseal.Error.Internal",
    [CS_ERROR_INVALID_INPUT] = "org.certseal.Error.InvalidInput",
    [CS_ERROR_NOT_ELIGIBLE] = "org.certseal.Error.NotEligible",
    [CS_ERROR_WRONG_STATE] = "org.certseal.Error.WrongState",
    [CS_ERROR_PIN_INCORRECT] = "org.certseal.Error.PinIncorrect",
    [CS_ERROR_PIN_LOCKED] = "org.certseal.Error.PinLocked",
    [CS_ERROR_MULTIPLE_KEYS] = "org.certseal.Error.MultipleKeys",
    [CS_ERROR_KEY_REMOVED] = "org.certseal.Error.KeyRemoved",
    [CS_ERROR_NO_KEY] = "org.certseal.Error.NoKey",
    [CS_ERROR_CODE_INVALID] = "org.certseal.Error.CodeInvalid",
    [CS_ERROR_CODE_EXPIRED] = "org.certseal.Error.CodeExpired",
    [CS_ERROR_TOO_MANY_ATTEMPTS] = "org.certseal.Error.TooManyAttempts",
    [CS_ERROR_RATE_LIMITED] = "org.certseal.Error.RateLimited",
    [CS_ERROR_NOT_FOUND] = "org.certseal.Error.NotFound",
    [CS_ERROR_ACCESS_DENIED] = "org.certseal.Error.AccessDenied",
    [CS_ERROR_UNAVAILABLE] = "org.certseal.Error.Unavailable",
};

const char *
cs_error_code_to_dbus_name(CsErrorCode code)
{
	if ((guint)code >= CS_ERROR_LAST)
		return error_names[CS_ERROR_INTERNAL];
	return error_names[code];
}

const char *
cs_subject_type_to_string(CsSubjectType type)
{
	switch (type) {
	case CS_SUBJECT_ORG:
		return "org";
	case CS_SUBJECT_PERSON:
		return "person";
	default:
		return NULL;
	}
}

CsSubjectType
cs_subject_type_from_string(const char *s)
{
	if (g_strcmp0(s, "org") == 0)
		return CS_SUBJECT_ORG;
	if (g_strcmp0(s, "person") == 0)
		return CS_SUBJECT_PERSON;
	return 0;
}

const char *
cs_subject_name_field(CsSubjectType type)
{
	return type == CS_SUBJECT_ORG ? "org_name" : "name";
}

const char *
cs_subject_number_field(CsSubjectType type)
{
	return type == CS_SUBJECT_ORG ? "uscc" : "id_number";
}

char *
cs_request_to_actor(const CsRequest *request)
{
	switch (request->actor) {
	case CS_ACTOR_DESKTOP:
		return g_strdup_printf("uid:%u", request->uid);
	case CS_ACTOR_GATEWAY:
		return g_strdup("gateway");
	case CS_ACTOR_SYSTEM:
		return g_strdup("system");
	default:
		return g_strdup_printf("office:%s",
				       request->user_id != NULL ? request->user_id : "?");
	}
}
