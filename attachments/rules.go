package attachments

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"regexp/syntax"
	"strings"
)

// ActionKind is what a rule does when it matches.
type ActionKind int

// Rule actions, as MailScanner names them.
const (
	// Allow ends the search: the file passes.
	Allow ActionKind = iota
	// Deny blocks the message (the policy decides what that means).
	Deny
	// DenyDelete removes the file and delivers the rest with a note.
	DenyDelete
	// Rename renames the file (to RenameTo, or the default pattern).
	Rename
	// Redirect sends the message to other addresses instead of its
	// recipients; chainmail cannot change recipients, so it is reported
	// and treated like Deny.
	Redirect
)

func (k ActionKind) String() string {
	switch k {
	case Deny:
		return "deny"
	case DenyDelete:
		return "deny+delete"
	case Rename:
		return "rename"
	case Redirect:
		return "redirect"
	}
	return "allow"
}

// Rule is one line of a rule file.
type Rule struct {
	File string
	Line int
	// Action and, for "rename to X", RenameTo (the replacement text, which
	// may use $1…), for addresses Addresses.
	Action    ActionKind
	RenameTo  string
	Addresses []string
	// Pattern is the regular expression as written (the second field);
	// MIMEPattern the optional "file -i" one ("" when absent or "-").
	Pattern     string
	MIMEPattern string
	// LogText and UserText are the third and fourth fields ("-" read as "").
	LogText  string
	UserText string

	re, mre *perlRegexp
}

// RuleSet is one rule file: the first rule that matches decides, no match
// allows.
type RuleSet struct {
	Name  string
	Rules []*Rule
}

// RuleError is a rule file line that cannot be used.
type RuleError struct {
	File string
	Line int
	Msg  string
}

func (e *RuleError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// LoadRules reads a rule file from disk.
func LoadRules(path string) (*RuleSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseRules(path, f)
}

// ParseRules reads a MailScanner rule file (filename.rules.conf,
// filetype.rules.conf and the archives.* variants share the format):
//
//	action <TAB…> regex [<TAB…> mime-regex] <TAB…> log text <TAB…> user text
//
// Fields are separated by runs of TABs. A line whose first character is
// '#' is a comment; leading and trailing white space is ignored. The
// optional MIME field is present when the line has five fields. The
// action is allow, deny, deny+delete (any "deny…" word with "delete" in
// it), rename, "rename to TEXT", or e-mail addresses. A regex written as
// /…/ loses its slashes; a leading '*' means ".*". A log or user text of
// "-" is empty. Matching is case-insensitive with '.' matching newlines,
// like Perl's /is.
//
// Unlike MailScanner, which logs "possible syntax error" and skips a bad
// line, ParseRules refuses the file with file:line and the reason: a
// security rule that is silently dropped is worse than a service that does
// not start. Perl-only regular expression syntax that Go's RE2 lacks is
// translated where the translation means the same (a backreference to a
// fixed-width group, \Z, \h, \Q…\E) and refused otherwise.
func ParseRules(name string, r io.Reader) (*RuleSet, error) {
	rs := &RuleSet{Name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		rule, err := parseRuleLine(line)
		if err != nil {
			return nil, &RuleError{File: name, Line: n, Msg: err.Error()}
		}
		rule.File, rule.Line = name, n
		rs.Rules = append(rs.Rules, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, &RuleError{File: name, Line: n + 1, Msg: err.Error()}
	}
	return rs, nil
}

var tabs = regexp.MustCompile(`\t+`)

func parseRuleLine(line string) (*Rule, error) {
	f := tabs.Split(line, 5)
	for len(f) < 5 {
		f = append(f, "")
	}
	action, pattern, mpat, logText, userText := f[0], f[1], f[2], f[3], f[4]
	if userText == "" {
		// Four fields: no MIME regex.
		userText, logText, mpat = logText, mpat, "-"
	}
	if action == "" || pattern == "" || mpat == "" || logText == "" || userText == "" {
		return nil, errors.New("fewer than 4 TAB-separated fields (action, regex, log text, user text): remember to separate fields with TABs")
	}
	r := &Rule{Pattern: pattern}
	if err := r.setAction(action); err != nil {
		return nil, err
	}
	pattern = strings.TrimSpace(pattern)
	if len(pattern) >= 2 && pattern[0] == '/' && pattern[len(pattern)-1] == '/' {
		pattern = pattern[1 : len(pattern)-1]
	}
	if len(mpat) >= 2 && mpat[0] == '/' && mpat[len(mpat)-1] == '/' {
		mpat = mpat[1 : len(mpat)-1]
	}
	if logText == "-" {
		logText = ""
	}
	if userText == "-" {
		userText = ""
	}
	if mpat == "-" {
		mpat = ""
	}
	r.Pattern, r.MIMEPattern, r.LogText, r.UserText = pattern, mpat, logText, userText
	var err error
	if r.re, err = compilePerl(pattern); err != nil {
		return nil, fmt.Errorf("regex %q: %v", pattern, err)
	}
	if mpat != "" {
		if r.mre, err = compilePerl(mpat); err != nil {
			return nil, fmt.Errorf("MIME regex %q: %v", mpat, err)
		}
	}
	return r, nil
}

func (r *Rule) setAction(a string) error {
	orig := a
	a = strings.Trim(strings.ToLower(a), " ,")
	switch {
	case a == "allow":
		r.Action = Allow
	case a == "rename":
		r.Action = Rename
	case strings.HasPrefix(a, "rename "):
		r.Action = Rename
		t := strings.TrimSpace(orig)[len("rename "):]
		if strings.HasPrefix(strings.ToLower(t), "to ") {
			t = t[3:]
		}
		r.RenameTo = t
	case strings.HasPrefix(a, "deny") && !strings.Contains(a, "@"):
		r.Action = Deny
		if strings.Contains(a, "delete") {
			r.Action = DenyDelete
		}
	case strings.Contains(a, "@"):
		r.Action = Redirect
		r.Addresses = strings.FieldsFunc(a, func(c rune) bool { return c == ',' || c == ' ' })
	default:
		return fmt.Errorf("unknown action %q (want allow, deny, deny+delete, rename, rename to TEXT or e-mail addresses)", orig)
	}
	return nil
}

// MatchName returns the first rule whose regex matches any of names (the
// way MailScanner tries both the attachment's name and its safe name), nil
// when none does.
func (rs *RuleSet) MatchName(names ...string) *Rule {
	if rs == nil {
		return nil
	}
	for _, r := range rs.Rules {
		for _, n := range names {
			if r.re.match(n) {
				return r
			}
		}
	}
	return nil
}

// MatchType returns the first rule whose regex matches the file(1)
// description, nil when none does. As in MailScanner, the description is
// cut at its first comma, and rules whose regex is "-" are skipped.
func (rs *RuleSet) MatchType(description string) *Rule {
	if rs == nil {
		return nil
	}
	if i := strings.IndexByte(description, ','); i >= 0 {
		description = description[:i]
	}
	for _, r := range rs.Rules {
		if r.Pattern == "" || r.Pattern == "-" {
			continue
		}
		if r.re.match(description) {
			return r
		}
	}
	return nil
}

// MatchMIME returns the first rule with a MIME regex that matches the
// "file -i" type (without parameters), nil when none does. MailScanner
// runs this pass apart from MatchType.
func (rs *RuleSet) MatchMIME(mimeType string) *Rule {
	if rs == nil {
		return nil
	}
	if i := strings.IndexByte(mimeType, ';'); i >= 0 {
		mimeType = mimeType[:i]
	}
	for _, r := range rs.Rules {
		if r.mre == nil {
			continue
		}
		if r.mre.match(mimeType) {
			return r
		}
	}
	return nil
}

// UsesMIME reports whether any rule has a MIME regex.
func (rs *RuleSet) UsesMIME() bool {
	if rs == nil {
		return false
	}
	for _, r := range rs.Rules {
		if r.mre != nil {
			return true
		}
	}
	return false
}

// RenamedName returns the new name for a rename rule: "rename to X"
// replaces what the regex matched with X (case-insensitively, $1… allowed),
// plain "rename" applies pattern (MailScanner's Default Rename Pattern,
// "__FILENAME__" standing for the name; a pattern without it is a suffix).
func (r *Rule) RenamedName(name, pattern string) string {
	if r.RenameTo != "" && r.re.re != nil && len(r.re.refs) == 0 {
		loc := r.re.re.FindStringSubmatchIndex(name)
		if loc == nil {
			return name
		}
		var dst []byte
		dst = r.re.re.ExpandString(dst, r.RenameTo, name, loc)
		return name[:loc[0]] + string(dst) + name[loc[1]:]
	}
	if pattern == "" {
		pattern = "__FILENAME__.disarmed"
	}
	if !strings.Contains(strings.ToUpper(pattern), "__FILENAME__") {
		pattern = "__FILENAME__" + pattern
	}
	i := strings.Index(strings.ToUpper(pattern), "__FILENAME__")
	return pattern[:i] + name + pattern[i+len("__FILENAME__"):]
}

// perlRegexp is a Perl regular expression compiled for RE2. Perl
// backreferences (\1) are compiled as a copy of the group they refer to
// and checked after the match: refs holds the pairs of group indexes that
// must have matched the same text (case-insensitively).
type perlRegexp struct {
	re     *regexp.Regexp
	refs   [][2]int
	anchor bool // the pattern starts at the beginning of the text only
}

func (p *perlRegexp) match(s string) bool {
	if len(p.refs) == 0 {
		return p.re.MatchString(s)
	}
	// The pattern is fixed-width (checked at compile time), so at each
	// start position there is at most one way to match and the groups'
	// texts are fully determined: trying every start position that
	// matches is exact.
	for i := 0; i <= len(s); {
		loc := p.re.FindStringSubmatchIndex(s[i:])
		if loc == nil {
			return false
		}
		ok := true
		for _, rf := range p.refs {
			a, b := loc[2*rf[0]], loc[2*rf[1]]
			if a < 0 || b < 0 || !strings.EqualFold(s[i+a:i+loc[2*rf[0]+1]], s[i+b:i+loc[2*rf[1]+1]]) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
		if p.anchor {
			return false
		}
		// Next start position: one character after this match's start.
		j := i + loc[0] + 1
		for j < len(s) && s[j]&0xc0 == 0x80 {
			j++
		}
		i = j
	}
	return false
}

// compilePerl translates a MailScanner (Perl) regex into RE2 syntax and
// compiles it case-insensitive with dot matching newline (/is).
func compilePerl(pat string) (*perlRegexp, error) {
	if strings.HasPrefix(pat, "*") {
		pat = "." + pat
	}
	groups := captureGroups(pat)
	var out strings.Builder
	var refs [][2]int
	type pending struct{ group, ref string }
	var named []pending
	refN := 0
	inClass := false
	groupAt := map[int]int{} // byte offset of '(' → group number
	for i, g := range groups {
		groupAt[g.open] = i + 1
	}
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		if inClass {
			if c == '\\' && i+1 < len(pat) {
				switch pat[i+1] {
				case 'h':
					out.WriteString(`\t `)
				case 'e':
					out.WriteString(`\x1b`)
				default:
					out.WriteString(pat[i : i+2])
				}
				i++
				continue
			}
			if c == ']' {
				inClass = false
			}
			out.WriteByte(c)
			continue
		}
		switch c {
		case '[':
			inClass = true
			out.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal.
			if i+1 < len(pat) && pat[i+1] == '^' {
				out.WriteByte('^')
				i++
			}
			if i+1 < len(pat) && pat[i+1] == ']' {
				out.WriteString(`\]`)
				i++
			}
		case '(':
			if n, ok := groupAt[i]; ok {
				if usesRef(pat, n) {
					out.WriteString(fmt.Sprintf("(?P<cmgrp%d>", n))
					continue
				}
				out.WriteByte('(')
				continue
			}
			rest := pat[i:]
			for _, bad := range []string{"(?=", "(?!", "(?<=", "(?<!", "(?>", "(?(", "(?R", "(?&", "(?|", "(?#"} {
				if strings.HasPrefix(rest, bad) {
					return nil, fmt.Errorf("the Perl construct %q has no RE2 equivalent", bad)
				}
			}
			out.WriteByte('(')
		case '\\':
			if i+1 >= len(pat) {
				return nil, errors.New("trailing backslash")
			}
			d := pat[i+1]
			switch {
			case d >= '1' && d <= '9':
				n := int(d - '0')
				if n > len(groups) || groups[n-1].close > i {
					return nil, fmt.Errorf("backreference \\%d to a group that is not closed before it", n)
				}
				refN++
				name := fmt.Sprintf("cmref%d", refN)
				out.WriteString("(?P<" + name + ">" + pat[groups[n-1].open+1:groups[n-1].close] + ")")
				named = append(named, pending{group: fmt.Sprintf("cmgrp%d", n), ref: name})
			case d == 'Z':
				out.WriteString(`(?:\n?\z)`)
			case d == 'h':
				out.WriteString(`[\t ]`)
			case d == 'H':
				out.WriteString(`[^\t ]`)
			case d == 'e':
				out.WriteString(`\x1b`)
			case d == 'Q':
				end := strings.Index(pat[i+2:], `\E`)
				lit := pat[i+2:]
				if end >= 0 {
					lit = pat[i+2 : i+2+end]
					i += 2 + end + 1
				} else {
					i = len(pat)
				}
				out.WriteString(regexp.QuoteMeta(lit))
				continue
			case d == 'G' || d == 'K' || d == 'R' || d == 'X' || d == 'g' || d == 'k' || d == 'N' || d == 'v' || d == 'V':
				return nil, fmt.Errorf("the Perl escape \\%c has no RE2 equivalent", d)
			default:
				out.WriteString(pat[i : i+2])
			}
			i++
		case '+', '*', '?', '}':
			out.WriteByte(c)
			if i+1 < len(pat) && pat[i+1] == '+' {
				return nil, errors.New("possessive quantifier has no RE2 equivalent")
			}
		default:
			out.WriteByte(c)
		}
	}
	translated := "(?is)" + out.String()
	re, err := regexp.Compile(translated)
	if err != nil {
		return nil, err
	}
	p := &perlRegexp{re: re}
	if len(named) > 0 {
		tree, err := syntax.Parse(translated, syntax.Perl)
		if err != nil {
			return nil, err
		}
		if _, fixed := width(tree); !fixed {
			return nil, errors.New("backreference in a pattern that is not fixed-width: no exact RE2 translation")
		}
		p.anchor = beginsAnchored(tree)
		for _, nm := range named {
			refs = append(refs, [2]int{re.SubexpIndex(nm.group), re.SubexpIndex(nm.ref)})
		}
		p.refs = refs
	}
	return p, nil
}

// usesRef reports whether pat refers to group n with \n.
func usesRef(pat string, n int) bool {
	inClass := false
	for i := 0; i < len(pat); i++ {
		switch {
		case pat[i] == '\\' && i+1 < len(pat):
			if !inClass && int(pat[i+1]-'0') == n && pat[i+1] >= '1' && pat[i+1] <= '9' {
				return true
			}
			i++
		case pat[i] == '[':
			inClass = true
		case pat[i] == ']':
			inClass = false
		}
	}
	return false
}

type groupSpan struct{ open, close int }

// captureGroups returns the capturing groups of a Perl pattern in order of
// their opening parenthesis.
func captureGroups(pat string) []groupSpan {
	var groups []groupSpan
	var stack []int // index into groups, -1 for non-capturing
	inClass := false
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch {
		case c == '\\':
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if i+1 < len(pat) && pat[i+1] == '^' {
				i++
			}
			if i+1 < len(pat) && pat[i+1] == ']' {
				i++
			}
		case c == '(':
			if i+1 < len(pat) && pat[i+1] == '?' && !strings.HasPrefix(pat[i:], "(?P<") && !strings.HasPrefix(pat[i:], "(?<") {
				stack = append(stack, -1)
				continue
			}
			groups = append(groups, groupSpan{open: i, close: -1})
			stack = append(stack, len(groups)-1)
		case c == ')':
			if len(stack) == 0 {
				continue
			}
			g := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if g >= 0 {
				groups[g].close = i
			}
		}
	}
	for i := range groups {
		if groups[i].close < 0 {
			groups[i].close = len(pat)
		}
	}
	return groups
}

// width returns the number of characters re matches and whether that
// number is fixed.
func width(re *syntax.Regexp) (int, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0, true
	case syntax.OpLiteral:
		return len(re.Rune), true
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1, true
	case syntax.OpCapture:
		return width(re.Sub[0])
	case syntax.OpConcat:
		total := 0
		for _, s := range re.Sub {
			w, ok := width(s)
			if !ok {
				return 0, false
			}
			total += w
		}
		return total, true
	case syntax.OpAlternate:
		w0 := -1
		for _, s := range re.Sub {
			w, ok := width(s)
			if !ok || (w0 >= 0 && w != w0) {
				return 0, false
			}
			w0 = w
		}
		return w0, true
	case syntax.OpRepeat:
		if re.Min != re.Max {
			return 0, false
		}
		w, ok := width(re.Sub[0])
		return w * re.Min, ok
	}
	return 0, false
}

func beginsAnchored(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginText:
		return true
	case syntax.OpConcat, syntax.OpCapture:
		return len(re.Sub) > 0 && beginsAnchored(re.Sub[0])
	}
	return false
}
