/* core/shell_words.c - the shell tokeniser behind `plait lint` (see shell_words.h).
 *
 * One pass over the text with a small lexer state: the current word, the
 * current command, and whether the next word is a redirection target (which
 * is dropped). Operators end the current command and are recorded on both
 * sides of it. */
#include "shell_words.h"

#include "buf.h"
#include "util.h"
#include "core/banned.h"

void plait_shell_script_release(struct plait_shell_script *s)
{
	for (size_t i = 0; i < s->n; i++)
		plait_strv_free(s->cmds[i].words);
	free(s->cmds);
	*s = (struct plait_shell_script){0};
}

void plait_shell_script_add(struct plait_shell_script *s, const char *const *words, size_t n)
{
	struct plait_shell_cmd c = {0};
	for (size_t i = 0; i < n; i++) {
		plait_strv_push(&c.words, words[i]);
		c.n++;
	}
	PLAIT_ALLOC_GROW(s->cmds, s->n + 1, s->alloc);
	s->cmds[s->n++] = c;
}

struct sh_lexer {
	struct plait_shell_script *out;
	struct plait_shell_cmd cur;
	struct plait_buf word;
	bool in_word;
	bool drop_word; /* the word is a redirection target */
	enum plait_shell_op pending;
};

static void lex_end_word(struct sh_lexer *lx)
{
	if (!lx->in_word)
		return;
	if (lx->drop_word)
		lx->drop_word = false;
	else {
		plait_strv_push(&lx->cur.words, lx->word.buf);
		lx->cur.n++;
	}
	plait_buf_reset(&lx->word);
	lx->in_word = false;
}

static void lex_end_cmd(struct sh_lexer *lx, enum plait_shell_op op)
{
	lex_end_word(lx);
	lx->drop_word = false;
	if (!lx->cur.n) {
		/* "a &&<newline> b" keeps the &&; "(" marks a subshell. */
		if (op == PLAIT_SHELL_SUBSHELL)
			lx->cur.before = PLAIT_SHELL_SUBSHELL;
		return;
	}
	struct plait_shell_script *s = lx->out;
	lx->cur.after = op == PLAIT_SHELL_SUBSHELL ? PLAIT_SHELL_SEQ : op;
	PLAIT_ALLOC_GROW(s->cmds, s->n + 1, s->alloc);
	s->cmds[s->n++] = lx->cur;
	lx->cur = (struct plait_shell_cmd){.before = op};
}

/* Copy a $(...) or `...` run into the word as is: the rules only need to
 * know that the word is not a plain literal. */
static const char *lex_substitution(struct sh_lexer *lx, const char *p)
{
	if (*p == '`') {
		const char *e = strchr(p + 1, '`');
		e = e ? e + 1 : p + strlen(p);
		plait_buf_add(&lx->word, p, (size_t)(e - p));
		return e;
	}
	int depth = 0;
	const char *q = p + 1; /* at '(' */
	for (; *q; q++) {
		if (*q == '(')
			depth++;
		else if (*q == ')' && --depth == 0) {
			q++;
			break;
		}
	}
	plait_buf_add(&lx->word, p, (size_t)(q - p));
	return q;
}

/* Split shell text into simple commands. Enough shell for recognising
 * package-manager calls; not a full POSIX parser (no case/if grammar). */
void plait_shell_split(const char *text, struct plait_shell_script *out)
{
	struct sh_lexer lx = {.out = out, .word = PLAIT_BUF_INIT};
	const char *p = text;
	while (*p) {
		char c = *p;
		if (c == '\\') {
			if (p[1] == '\n') {
				p += 2;
				continue;
			}
			if (p[1]) {
				plait_buf_addch(&lx.word, p[1]);
				lx.in_word = true;
				p += 2;
				continue;
			}
			p++;
			continue;
		}
		if (c == '\'') {
			const char *e = strchr(p + 1, '\'');
			if (!e)
				e = p + strlen(p);
			plait_buf_add(&lx.word, p + 1, (size_t)(e - p - 1));
			lx.in_word = true;
			p = *e ? e + 1 : e;
			continue;
		}
		if (c == '"') {
			lx.in_word = true;
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1] && strchr("\"\\$`\n", p[1])) {
					if (p[1] != '\n')
						plait_buf_addch(&lx.word, p[1]);
					p += 2;
				} else if ((*p == '$' && p[1] == '(') || *p == '`') {
					p = lex_substitution(&lx, p);
				} else {
					plait_buf_addch(&lx.word, *p++);
				}
			}
			if (*p)
				p++;
			continue;
		}
		if ((c == '$' && p[1] == '(') || c == '`') {
			lx.in_word = true;
			p = lex_substitution(&lx, p);
			continue;
		}
		if (c == '#' && !lx.in_word) {
			while (*p && *p != '\n')
				p++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r') {
			lex_end_word(&lx);
			p++;
			continue;
		}
		if (c == '\n' || c == ';') {
			lex_end_cmd(&lx, PLAIT_SHELL_SEQ);
			p++;
			continue;
		}
		if (c == '&' && p[1] == '&') {
			lex_end_cmd(&lx, PLAIT_SHELL_AND);
			p += 2;
			continue;
		}
		if (c == '|' && p[1] == '|') {
			lex_end_cmd(&lx, PLAIT_SHELL_OR);
			p += 2;
			continue;
		}
		if (c == '|') {
			lex_end_cmd(&lx, PLAIT_SHELL_PIPE);
			p++;
			continue;
		}
		if (c == '(') {
			lex_end_cmd(&lx, PLAIT_SHELL_SUBSHELL);
			p++;
			continue;
		}
		if (c == ')') {
			lex_end_cmd(&lx, PLAIT_SHELL_SEQ);
			p++;
			continue;
		}
		if (c == '>' || c == '<' || (c == '&' && p[1] == '>')) {
			/* A redirection: "2>" drops the fd number, then the target. */
			bool fd_only = lx.in_word && lx.word.len &&
				       strspn(lx.word.buf, "0123456789") == lx.word.len;
			if (fd_only) {
				plait_buf_reset(&lx.word);
				lx.in_word = false;
			} else {
				lex_end_word(&lx);
			}
			while (*p == '>' || *p == '<' || *p == '&' || *p == '|' || *p == '-')
				p++;
			/* ">&2": the target is glued to the operator. */
			while (*p == ' ' || *p == '\t')
				p++;
			lx.drop_word = true;
			continue;
		}
		if (c == '&') {
			lex_end_cmd(&lx, PLAIT_SHELL_SEQ);
			p++;
			continue;
		}
		plait_buf_addch(&lx.word, c);
		lx.in_word = true;
		p++;
	}
	lex_end_cmd(&lx, PLAIT_SHELL_SEQ);
	plait_strv_free(lx.cur.words);
	plait_buf_release(&lx.word);
}
