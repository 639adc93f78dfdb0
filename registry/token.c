/* registry/token.c - the registry client's auth hook (see client.h) and the
 * Bearer token dance (see token.h), with the WWW-Authenticate parser (auth.h).
 *
 * A request gets its Authorization header from the hook before each try; a
 * 401 is answered once: with Basic credentials, or with a token fetched from
 * the realm the challenge names. The token request goes through the retry
 * loop without a hook, so a token server's own 401 is an answer, never a new
 * challenge.
 *
 * Choices worth knowing:
 *  - once a registry challenged with Basic, credentials go with every request;
 *    once it challenged with Bearer, a token for a new scope is fetched before
 *    the first request instead of after an anonymous 401;
 *  - a token is kept until min(30 s, expires_in / 2) before expires_in runs
 *    out, counted from when it was requested (issued_at is not trusted: clocks
 *    differ); an identity token is exchanged with the OAuth2 POST form
 *    (grant_type=refresh_token), everything else uses GET with Basic;
 *  - credentials are never sent over plain HTTP to a token server that is
 *    neither loopback nor listed insecure. */
#include "token.h"

#include <ctype.h>
#include <strings.h>

#include <jansson.h>

#include "client.h"
#include "core/ref.h"

#include "core/banned.h"

/* ------------------------------------------------------------------ WWW-Authenticate */

static bool is_tchar(char c)
{
	return c && (isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

void plait_auth_challenge_release(struct plait_auth_challenge *c)
{
	if (!c)
		return;
	free(c->scheme);
	free(c->realm);
	free(c->service);
	free(c->scope);
	free(c->error);
	memset(c, 0, sizeof(*c));
}

static int challenge_error(struct plait_auth_challenge *out, struct plait_error **err,
			   const char *header, const char *why)
{
	plait_auth_challenge_release(out);
	return plait_error_set(err, PLAIT_E_INVALID,
			       "invalid WWW-Authenticate header '%.200s%s': %s", header,
			       strlen(header) > 200 ? "…" : "", why);
}

static bool key_is(const char *key, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(key, name, len) == 0;
}

static void set_param(struct plait_auth_challenge *out, const char *key, size_t key_len,
		      struct plait_buf *value)
{
	char **field = NULL;
	if (key_is(key, key_len, "realm"))
		field = &out->realm;
	else if (key_is(key, key_len, "service"))
		field = &out->service;
	else if (key_is(key, key_len, "error"))
		field = &out->error;
	else if (key_is(key, key_len, "scope")) {
		/* Repeated scope parameters add up, as a space separated list. */
		if (out->scope) {
			struct plait_buf b = PLAIT_BUF_INIT;
			plait_buf_addf(&b, "%s %s", out->scope, value->buf);
			free(out->scope);
			out->scope = plait_buf_detach(&b, NULL);
			return;
		}
		field = &out->scope;
	}
	if (field && !*field)
		*field = xstrdup(value->buf);
}

int plait_auth_parse_challenge(const char *header, struct plait_auth_challenge *out,
			       struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	if (!header)
		header = "";
	const char *p = header;
	while (is_ows(*p))
		p++;
	const char *scheme = p;
	while (is_tchar(*p))
		p++;
	if (p == scheme)
		return challenge_error(out, err, header, "missing authentication scheme");
	if (*p && !is_ows(*p))
		return challenge_error(out, err, header,
				       "unexpected character after the authentication scheme");
	out->scheme = xstrndup(scheme, (size_t)(p - scheme));
	for (char *s = out->scheme; *s; s++)
		*s = (char)tolower((unsigned char)*s);

	_cleanup_buf_ struct plait_buf value = PLAIT_BUF_INIT;
	for (;;) {
		bool after_comma = false;
		while (is_ows(*p) || *p == ',')
			after_comma |= *p++ == ',';
		if (!*p)
			break;
		const char *key = p;
		while (is_tchar(*p))
			p++;
		size_t key_len = (size_t)(p - key);
		if (!key_len)
			return challenge_error(out, err, header, "expected a parameter name");
		const char *q = p;
		while (is_ows(*q))
			q++;
		if (*q != '=') {
			/* "Basic realm=x, Bearer realm=y": a second challenge; the first wins. */
			if (after_comma && (!*q || (q != p && is_tchar(*q))))
				break;
			return challenge_error(out, err, header,
					       "expected '=' after a parameter name");
		}
		p = q + 1;
		while (is_ows(*p))
			p++;
		plait_buf_reset(&value);
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\') {
					p++;
					if (!*p)
						break;
				}
				plait_buf_addch(&value, *p++);
			}
			if (*p != '"')
				return challenge_error(out, err, header,
						       "unterminated quoted string");
			p++;
		} else {
			const char *v = p;
			while (*p && *p != ',' && !is_ows(*p) && *p != '"')
				p++;
			if (p == v)
				return challenge_error(out, err, header, "missing parameter value");
			plait_buf_add(&value, v, (size_t)(p - v));
		}
		set_param(out, key, key_len, &value);
		while (is_ows(*p))
			p++;
		if (*p && *p != ',')
			return challenge_error(out, err, header, "expected ',' between parameters");
	}
	if (streq(out->scheme, "bearer") && !out->realm)
		return challenge_error(out, err, header, "a bearer challenge needs a realm");
	return 0;
}

/* ------------------------------------------------------------------ token requests */

void token_scope(const char *repo, bool push, const char *mount_from, struct plait_buf *out)
{
	if (!repo)
		return;
	plait_buf_addf(out, "repository:%s:%s", repo, push ? "pull,push" : "pull");
	if (mount_from && !streq(mount_from, repo))
		plait_buf_addf(out, " repository:%s:pull", mount_from);
}

static void scope_key(const struct rq *q, enum access access, struct plait_buf *out)
{
	token_scope(q->repo, access == ACCESS_PUSH, q->mount_from, out);
}

void token_req_build(const char *realm, const char *service, const char *scopes,
		     const struct plait_credentials *c, struct token_req *out)
{
	*out = (struct token_req){ .url = PLAIT_BUF_INIT, .form = PLAIT_BUF_INIT };
	struct plait_buf *url = &out->url, *form = &out->form;
	bool have = registry_creds_usable(c);
	bool oauth = c && c->identity_token && *c->identity_token;
	if (oauth) {
		/* docker's OAuth2 form for refresh (identity) tokens */
		plait_buf_adds(url, realm);
		plait_buf_adds(form, "grant_type=refresh_token&client_id=plait&refresh_token=");
		plait_http_add_escaped(form, c->identity_token);
		if (service && *service) {
			plait_buf_adds(form, "&service=");
			plait_http_add_escaped(form, service);
		}
		if (*scopes) {
			plait_buf_adds(form, "&scope=");
			plait_http_add_escaped(form, scopes);
		}
		out->method = "POST";
	} else {
		plait_buf_adds(url, realm);
		char sep = strchr(realm, '?') ? '&' : '?';
		if (service && *service) {
			plait_buf_addf(url, "%cservice=", sep);
			plait_http_add_escaped(url, service);
			sep = '&';
		}
		/* one scope parameter per scope, as docker sends them */
		const char *s = scopes;
		while (*s) {
			size_t n = strcspn(s, " ");
			_cleanup_free_ char *one = xstrndup(s, n);
			plait_buf_addf(url, "%cscope=", sep);
			plait_http_add_escaped(url, one);
			sep = '&';
			s += n;
			while (*s == ' ')
				s++;
		}
		out->method = "GET";
		if (have)
			out->auth = registry_basic_header(c);
	}
}

void token_req_release(struct token_req *t)
{
	if (t->form.len)
		explicit_bzero(t->form.buf, t->form.len);
	plait_buf_release(&t->form);
	plait_buf_release(&t->url);
	if (t->auth)
		explicit_bzero(t->auth, strlen(t->auth));
	free(t->auth);
	t->auth = NULL;
}

int token_check_realm(const char *host, const char *realm, char *const *insecure_hosts,
		      bool sends_creds, char **realm_host, bool *realm_insecure,
		      struct plait_error **err)
{
	_cleanup_free_ char *rh = registry_url_authority(realm);
	if (!rh || !(startswith(realm, "https://") || startswith(realm, "http://")))
		return plait_error_set(err, PLAIT_E_GENERIC,
				       "registry %s names an invalid token server '%s'", host, realm);
	bool insecure = registry_host_listed(insecure_hosts, rh);
	if (sends_creds && startswith(realm, "http://") && !plait_host_is_loopback(rh) &&
	    !insecure)
		return plait_error_set(err, PLAIT_E_AUTH,
				       "registry %s sends credentials to token server '%s' over plain "
				       "HTTP: refusing; list '%s' as an insecure registry if this is intended",
				       host, realm, rh);
	*realm_host = TAKE_PTR(rh);
	*realm_insecure = insecure;
	return 0;
}

int token_parse_answer(const char *host, const char *realm, const struct plait_buf *body,
		       uint64_t start_ns, char **header, uint64_t *valid_until_ns,
		       struct plait_error **err)
{
	json_error_t jerr;
	json_auto_t *j = json_loadb(body->buf, body->len, 0, &jerr);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!tok || !*tok)
		tok = json_string_value(json_object_get(j, "access_token"));
	if (!tok || !*tok)
		return plait_error_set(err, PLAIT_E_INVALID,
				       "token server '%s' for registry %s answered without a token%s%s",
				       realm, host, j ? "" : ": invalid JSON: ", j ? "" : jerr.text);
	json_int_t expires = 60;
	json_t *je = json_object_get(j, "expires_in");
	if (json_is_integer(je) && json_integer_value(je) > 0)
		expires = json_integer_value(je);
	json_int_t margin = expires / 2 < TOKEN_MARGIN_S ? expires / 2 : TOKEN_MARGIN_S;
	*valid_until_ns = start_ns + (uint64_t)(expires - margin) * 1000000000ULL;
	struct plait_buf h = PLAIT_BUF_INIT;
	plait_buf_addf(&h, "Authorization: Bearer %s", tok);
	*header = plait_buf_detach(&h, NULL);
	return 0;
}

/* ------------------------------------------------------------------ the token cache */

/* The cached Authorization header for q's scope (caller frees), or NULL. */
static char *cached_auth(struct plait_registry *r, const struct rq *q)
{
	char *ret = NULL;
	struct plait_buf want = PLAIT_BUF_INIT, wider = PLAIT_BUF_INIT;
	scope_key(q, q->access, &want);
	/* a pull,push token also covers pull */
	scope_key(q, ACCESS_PUSH, &wider);
	uint64_t now = plait_now_ns();
	pthread_mutex_lock(&r->lock);
	if (r->basic_header) {
		ret = xstrdup(r->basic_header);
	} else {
		for (size_t i = 0; i < r->n_tokens && !ret; i++)
			if ((streq(r->tokens[i].scope, want.buf) || streq(r->tokens[i].scope, wider.buf)) &&
			    now < r->tokens[i].valid_until_ns)
				ret = xstrdup(r->tokens[i].header);
	}
	pthread_mutex_unlock(&r->lock);
	plait_buf_release(&want);
	plait_buf_release(&wider);
	return ret;
}

static void cache_token(struct plait_registry *r, const char *scope, const char *header,
			uint64_t valid_until_ns)
{
	pthread_mutex_lock(&r->lock);
	size_t i;
	for (i = 0; i < r->n_tokens; i++)
		if (streq(r->tokens[i].scope, scope))
			break;
	if (i == r->n_tokens) {
		PLAIT_ALLOC_GROW(r->tokens, r->n_tokens + 1, r->alloc_tokens);
		r->tokens[r->n_tokens++] = (struct token){ .scope = xstrdup(scope) };
	}
	free(r->tokens[i].header);
	r->tokens[i].header = xstrdup(header);
	r->tokens[i].valid_until_ns = valid_until_ns;
	pthread_mutex_unlock(&r->lock);
}

void registry_tokens_release(struct plait_registry *r)
{
	for (size_t i = 0; i < r->n_tokens; i++) {
		free(r->tokens[i].scope);
		free(r->tokens[i].header);
	}
	free(r->tokens);
	r->tokens = NULL;
	r->n_tokens = r->alloc_tokens = 0;
	free(r->basic_header);
	free(r->bearer_realm);
	free(r->bearer_service);
	r->basic_header = r->bearer_realm = r->bearer_service = NULL;
}

/* ------------------------------------------------------------------ auth messages */

/* "authentication required by registry H for repository 'R' (push): run 'plait login H'" */
int registry_auth_required(struct plait_registry *r, const struct rq *q, bool had_creds,
			   const struct plait_http_resp *resp, struct plait_error **err)
{
	if (q->login) {
		struct plait_buf b = PLAIT_BUF_INIT;
		registry_add_status(&b, resp);
		int rc = plait_error_set(err, PLAIT_E_AUTH,
					 "login to %s refused: %s: check the user name and password",
					 r->creds_host, b.buf);
		plait_buf_release(&b);
		return rc;
	}
	struct plait_buf what = PLAIT_BUF_INIT;
	if (q->repo)
		plait_buf_addf(&what, " for repository '%s' (%s)", q->repo,
			       registry_access_name(q->access));
	int rc = plait_error_set(err, PLAIT_E_AUTH,
				 "authentication required by registry %s%s: %srun 'plait login %s'",
				 r->host, what.buf,
				 had_creds ? "the stored credentials were not accepted; " : "",
				 r->creds_host);
	plait_buf_release(&what);
	return rc;
}

static int access_refused(struct plait_registry *r, const struct rq *q,
			  const struct plait_http_resp *resp, struct plait_error **err)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	registry_add_status(&b, resp);
	registry_add_error_body(&b, &resp->err_body);
	int rc;
	if (q->login)
		rc = plait_error_set(err, PLAIT_E_AUTH,
				     "login to %s refused: %s: check the user name and password",
				     r->creds_host, b.buf);
	else if (q->repo)
		rc = plait_error_set(err, PLAIT_E_AUTH,
				     "registry %s refused %s access to repository '%s': %s: "
				     "check the account has %s access",
				     r->host, registry_access_name(q->access), q->repo, b.buf,
				     registry_access_name(q->access));
	else
		rc = plait_error_set(err, PLAIT_E_AUTH, "registry %s refused access: %s", r->host,
				     b.buf);
	plait_buf_release(&b);
	return rc;
}

/* ------------------------------------------------------------------ tokens and challenges */

/* Fetch a Bearer token from realm for q's scopes. The token server is asked
 * through registry_send without a hook: its 401/403 are answers. */
static int fetch_token(struct plait_registry *r, const struct rq *q, const char *realm,
		       const char *service, const struct plait_credentials *c, char **header_out,
		       uint64_t *valid_until_ns, struct plait_error **err)
{
	_cleanup_free_ char *realm_host = NULL;
	bool realm_insecure = false;
	bool have = registry_creds_usable(c);
	int rc = token_check_realm(r->host, realm, r->insecure_hosts, have, &realm_host,
				   &realm_insecure, err);
	if (rc < 0)
		return rc;

	struct plait_http_tls own_tls = { 0 };
	const struct plait_http_tls *tls = &r->tls;
	if (!streq(realm_host, r->host)) {
		rc = plait_http_tls_for_host(realm_host, (const char *const *)r->certs_dirs,
					     !realm_insecure, &own_tls, err);
		if (rc < 0)
			return rc;
		tls = &own_tls;
	}

	struct plait_buf scopes = PLAIT_BUF_INIT, body = PLAIT_BUF_INIT;
	struct token_req tr;
	scope_key(q, q->access, &scopes);
	token_req_build(realm, service, scopes.buf, c, &tr);
	struct rq tq = { .method = tr.method, .url = tr.url.buf, .tls = tls, .out = &body,
			 .out_max = TOKEN_BODY_MAX };
	if (streq(tr.method, "POST")) {
		tq.body = tr.form.buf;
		tq.body_len = (int64_t)tr.form.len;
		tq.hdrs[0] = "Content-Type: application/x-www-form-urlencoded";
	} else {
		tq.hdrs[0] = tr.auth; /* NULL when anonymous */
	}

	uint64_t start = plait_now_ns();
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	rc = registry_send(r, &tq, NULL, &resp, err);
	if (rc < 0) {
		plait_error_wrap(err, "get a token for registry %s", r->host);
		goto out;
	}
	if (resp.status == 401 || resp.status == 403) {
		if (resp.status == 401 || q->login) {
			rc = registry_auth_required(r, q, have, &resp, err);
			if (!q->login)
				plait_error_wrap(err, "token server '%s'", realm);
		} else {
			rc = access_refused(r, q, &resp, err);
		}
		goto out;
	}
	if (resp.status != 200) {
		rc = registry_unexpected(err, tq.method, realm, &resp);
		plait_error_wrap(err, "get a token for registry %s", r->host);
		goto out;
	}
	rc = token_parse_answer(r->host, realm, &body, start, header_out, valid_until_ns, err);
out:
	plait_http_resp_release(&resp);
	token_req_release(&tr);
	plait_buf_release(&body);
	plait_buf_release(&scopes);
	plait_http_tls_release(&own_tls);
	return rc;
}

/* Fetch a token for q using what the registry told about its realm before. */
static int bearer_for(struct plait_registry *r, const struct rq *q, const char *realm,
		      const char *service, struct auth_state *as, struct plait_error **err)
{
	struct plait_credentials c = { 0 };
	const struct plait_credentials *use = q->login;
	if (!q->login) {
		int rc = registry_stored_creds(r, &c, err);
		if (rc < 0)
			return rc;
		use = rc > 0 ? &c : NULL;
	}
	char *header = NULL;
	uint64_t until = 0;
	int rc = fetch_token(r, q, realm, service, use, &header, &until, err);
	plait_credentials_release(&c);
	if (rc < 0)
		return rc;
	if (!q->login) {
		struct plait_buf key = PLAIT_BUF_INIT;
		scope_key(q, q->access, &key);
		cache_token(r, key.buf, header, until);
		plait_buf_release(&key);
	}
	free(as->header);
	as->header = header;
	as->fresh = true;
	return 0;
}

/* The Authorization header for the next try (caller frees), or NULL. */
static int current_auth(struct plait_registry *r, const struct rq *q,
			struct auth_state *as, char **out, struct plait_error **err)
{
	*out = NULL;
	if (as->header) {
		*out = xstrdup(as->header);
		return 0;
	}
	if (q->login)
		return 0;
	*out = cached_auth(r, q);
	if (*out)
		return 0;
	/* A registry that asked for Bearer once will ask again: get the token
	 * now rather than after a 401 (which would also cost a body upload). */
	pthread_mutex_lock(&r->lock);
	_cleanup_free_ char *realm = xstrdup_or_null(r->bearer_realm);
	_cleanup_free_ char *service = xstrdup_or_null(r->bearer_service);
	pthread_mutex_unlock(&r->lock);
	if (!realm)
		return 0;
	int rc = bearer_for(r, q, realm, service, as, err);
	if (rc < 0)
		return rc;
	*out = xstrdup(as->header);
	return 0;
}

/* A 401 arrived: answer its challenge once per request. */
static int answer_challenge(struct plait_registry *r, const struct rq *q,
			    struct auth_state *as, const struct plait_http_resp *resp,
			    struct plait_error **err)
{
	if (as->fresh) {
		/* what this request fetched was refused too */
		bool had = q->login ? registry_creds_usable(q->login) : registry_have_stored_creds(r);
		return registry_auth_required(r, q, had, resp, err);
	}
	if (!resp->www_authenticate)
		return registry_auth_required(r, q, false, resp, err);
	struct plait_auth_challenge ch = { 0 };
	int rc = plait_auth_parse_challenge(resp->www_authenticate, &ch, err);
	if (rc < 0)
		return plait_error_wrap(err, "registry %s", r->host);

	if (ch.scheme && streq(ch.scheme, "basic")) {
		struct plait_credentials c = { 0 };
		const struct plait_credentials *use = q->login;
		if (!q->login) {
			rc = registry_stored_creds(r, &c, err);
			if (rc < 0)
				goto out;
			use = rc > 0 ? &c : NULL;
		}
		if (!use || !use->username || !*use->username) {
			plait_credentials_release(&c);
			rc = registry_auth_required(r, q, false, resp, err);
			goto out;
		}
		char *h = registry_basic_header(use);
		plait_credentials_release(&c);
		if (!q->login) {
			pthread_mutex_lock(&r->lock);
			free(r->basic_header);
			r->basic_header = xstrdup(h);
			pthread_mutex_unlock(&r->lock);
		}
		free(as->header);
		as->header = h;
		as->fresh = true;
		rc = 0;
	} else if (ch.scheme && streq(ch.scheme, "bearer")) {
		if (!ch.realm || !*ch.realm) {
			rc = plait_error_set(err, PLAIT_E_GENERIC,
					     "registry %s asks for a Bearer token but names no realm",
					     r->host);
			goto out;
		}
		if (!q->login) {
			pthread_mutex_lock(&r->lock);
			free(r->bearer_realm);
			free(r->bearer_service);
			r->bearer_realm = xstrdup(ch.realm);
			r->bearer_service = xstrdup_or_null(ch.service);
			pthread_mutex_unlock(&r->lock);
		}
		rc = bearer_for(r, q, ch.realm, ch.service, as, err);
	} else {
		rc = plait_error_set(err, PLAIT_E_AUTH,
				     "registry %s asks for unsupported authentication scheme '%s'",
				     r->host, ch.scheme ? ch.scheme : "");
	}
out:
	plait_auth_challenge_release(&ch);
	return rc;
}

const struct auth_hook registry_auth = {
	.header = current_auth,
	.challenge = answer_challenge,
	.refused = access_refused,
};
