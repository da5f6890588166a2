package checks

import (
	"sort"
	"strings"
)

// HeaderRef names one received header field: its name as received and
// its 1-based index among the fields of that name (case-insensitive), the
// way the milter change-header command counts them.
type HeaderRef struct {
	Name  string `json:"name"`
	Index int    `json:"index"`
}

// ForgedHeaders returns the received fields that must not reach the
// recipient whatever the verdict: every Authentication-Results that
// claims authservID (RFC 8601 §5: an MTA removes those it did not add)
// and every spam verdict field of ours a sender may have forged
// (X-Spam-Status, X-Spam-Flag, X-Spam-Score, X-Chainmail-*). They are
// ordered for removal: fields of one name from the highest index down, so
// the indexes stay valid while they are removed one by one.
func ForgedHeaders(fields []HeaderField, authservID string) []HeaderRef {
	var out []HeaderRef
	count := map[string]int{}
	for _, f := range fields {
		key := strings.ToLower(f.Name)
		count[key]++
		forged := false
		switch {
		case key == "authentication-results":
			forged = authservID != "" && claimsAuthserv(Unfold(f.Value), authservID)
		case key == "x-spam-status", key == "x-spam-flag", key == "x-spam-score",
			strings.HasPrefix(key, "x-chainmail-"):
			forged = true
		}
		if forged {
			out = append(out, HeaderRef{Name: f.Name, Index: count[key]})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := strings.ToLower(out[i].Name), strings.ToLower(out[j].Name)
		if a != b {
			return a < b
		}
		return out[i].Index > out[j].Index
	})
	return out
}

// claimsAuthserv reports whether an Authentication-Results value names
// id as its authserv-id (RFC 8601 §2.2: [CFWS] authserv-id, where the id
// is a token or a quoted-string, compared case-insensitively). A value
// whose start cannot be read (an unterminated comment or quoted-string)
// counts as ours when it mentions id at all: a field that might claim our
// name is removed rather than kept.
func claimsAuthserv(v, id string) bool {
	got, ok := authservID(v)
	if !ok {
		return strings.Contains(strings.ToLower(v), strings.ToLower(id))
	}
	return strings.EqualFold(got, id)
}

// authservID reads the authserv-id at the start of an
// Authentication-Results value; ok is false when the syntax cannot be
// read.
func authservID(v string) (id string, ok bool) {
	i, ok := skipCFWS(v, 0)
	if !ok || i >= len(v) {
		return "", false
	}
	if v[i] == '"' {
		var b strings.Builder
		for i++; i < len(v); i++ {
			switch v[i] {
			case '\\':
				i++
				if i < len(v) {
					b.WriteByte(v[i])
				}
			case '"':
				return b.String(), true
			default:
				b.WriteByte(v[i])
			}
		}
		return "", false
	}
	j := i
	for j < len(v) && !strings.ContainsRune(" \t\r\n;()\"", rune(v[j])) {
		j++
	}
	if j == i {
		return "", false
	}
	return v[i:j], true
}

// skipCFWS skips white space and comments (nested, with quoted-pairs)
// from i; ok is false for an unterminated comment.
func skipCFWS(v string, i int) (int, bool) {
	for i < len(v) {
		switch v[i] {
		case ' ', '\t', '\r', '\n':
			i++
		case '(':
			depth := 0
			for ; i < len(v); i++ {
				c := v[i]
				if c == '\\' {
					i++
					continue
				}
				if c == '(' {
					depth++
				} else if c == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			if depth != 0 {
				return i, false
			}
			i++
		default:
			return i, true
		}
	}
	return i, true
}
