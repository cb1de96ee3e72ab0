/* Handshake payloads (PROTOCOL.md §8, §9.4): parse HandshakeRequest,
 * HandshakeComplete and EncChallengeRequest, build HandshakeResponse and
 * EncChallengeResponse, and the small JSON bodies (Size, channel_closed).
 * Pure functions over cJSON; strings returned are malloc'd. */
#ifndef SSM_HANDSHAKE_H
#define SSM_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ssm_session_kind {
    SSM_SESSION_UNKNOWN = 0,
    SSM_SESSION_SHELL, /* Standard_Stream, InteractiveCommands, NonInteractiveCommands */
    SSM_SESSION_PORT,
};

enum ssm_action_status {
    SSM_ACTION_SUCCESS = 1,
    SSM_ACTION_FAILED = 2,
    SSM_ACTION_UNSUPPORTED = 3,
};

#define SSM_HS_MAX_ACTIONS 8

typedef struct ssm_hs_action {
    char *type;           /* ActionType, echoed back */
    bool is_session_type; /* ActionType "SessionType" */
    bool is_kms;          /* ActionType "KMSEncryption" */
} ssm_hs_action;

/* Port properties from SessionType.Properties (missing -> ""). */
typedef struct ssm_port_props {
    char *port_number, *local_port_number, *local_unix_socket, *local_connection_type,
        *type, *host;
} ssm_port_props;

typedef struct ssm_hs_request {
    char *agent_version;      /* "" when absent */
    size_t n_actions;
    ssm_hs_action actions[SSM_HS_MAX_ACTIONS];
    char *session_type;       /* raw SessionType string, NULL when no such action */
    enum ssm_session_kind kind;
    ssm_port_props port;      /* all "" unless kind == PORT */
    char *kms_key_id;         /* NULL unless a KMSEncryption action is present */
    char *kms_challenge;      /* NULL or "" when the agent sent no Challenge */
} ssm_hs_request;

/* Returns 0, or -1 when p is not a JSON object. Unknown fields are ignored. */
int ssm_hs_request_parse(const uint8_t *p, size_t n, ssm_hs_request *out);
void ssm_hs_request_free(ssm_hs_request *r);

/* One processed action for the response. */
typedef struct ssm_hs_result {
    const char *type;
    int status;                  /* enum ssm_action_status */
    const char *error;           /* "" on success */
    /* KMSEncryption success only: */
    const char *kms_ciphertext_b64;
    bool challenge_ack;          /* add "ChallengeAcknowledgement":true */
} ssm_hs_result;

/* Builds the compact HandshakeResponse JSON (§8.3), Errors null when no
 * action failed. Returns a malloc'd NUL-terminated string. */
char *ssm_hs_response_build(const char *client_version, const ssm_hs_result *res, size_t n);

/* HandshakeComplete: CustomerMessage (malloc'd, "" when absent). */
int ssm_hs_complete_parse(const uint8_t *p, size_t n, char **customer_message);

/* {"Challenge":"<base64>"} in both directions. parse returns malloc'd
 * decoded bytes; build takes raw bytes and returns malloc'd JSON. */
int ssm_challenge_parse(const uint8_t *p, size_t n, uint8_t **bytes, size_t *len);
char *ssm_challenge_build(const uint8_t *bytes, size_t len);

/* {"cols":C,"rows":R} into buf; returns length or -1. */
int ssm_size_body(char *buf, size_t cap, unsigned cols, unsigned rows);

/* channel_closed payload: Output field, lenient (malloc'd, "" if absent). */
char *ssm_channel_closed_output(const uint8_t *p, size_t n);

#endif
