// Package attachment is the attachment check: it finds every file a
// message carries (MIME parts, uuencoded blocks, TNEF winmail.dat,
// archive members to a configured depth) with the attachments library,
// applies MailScanner-format filename and filetype rules to each, and
// reports active content, disguises and everything it could not inspect.
//
// What the rules say is reported, not enforced: a deny hit makes the
// status "blocked" (the default policy rejects), a deny+delete hit
// removes the file (Result.NewBody: the part is cut out and a short
// text/plain note put in its place, the rest of the message byte for
// byte as received), a rename hit rewrites the part's file name. Every
// rule hit is logged in MailScanner's words:
//
//	Filename Checks: <log text> (<queue id> <file name>)
//	Filetype Checks: <log text> (<queue id> <file name>)
//
// Findings the rules do not cover are facts for the policy, each with a
// symbol: attachment.unscannable (structure or archive that could not be
// read, encryption, a limit reached — never a silent pass),
// attachment.suspicious (macros, DDE, PDF JavaScript, a name or type that
// lies about the content, RTLO), attachment.encrypted (an encrypted
// document), attachment.malformed (damage that was read past).
//
// Active content is then handled QuickSand's way (quicksand.go): every
// file is safe, suspicious, encrypted or indeterminate, and the
// active_content option says per category whether it is delivered,
// disarmed (attachments.Disarm: the file delivered without what runs by
// itself), removed, or the message held or refused. What was disarmed,
// removed or delivered by that choice no longer sets the facts above.
package attachment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/verdictlog"
)

// Statuses of the attachment check besides the shared ones (clean,
// blocked).
const (
	// StatusUnscannable: something could not be inspected.
	StatusUnscannable checks.Status = "unscannable"
	// StatusSuspicious: active content or a disguise.
	StatusSuspicious checks.Status = "suspicious"
	// StatusDeleted: deny+delete rules removed files; the rest is
	// delivered.
	StatusDeleted checks.Status = "deleted"
	// StatusEncrypted: an encrypted document.
	StatusEncrypted checks.Status = "encrypted"
	// StatusDisarmed: active content was removed from files that are
	// delivered.
	StatusDisarmed checks.Status = "disarmed"
)

// Symbols.
const (
	SymBlocked          = "ATTACHMENT_BLOCKED"
	SymDeleted          = "ATTACHMENT_DELETED"
	SymUnscannable      = "ATTACHMENT_UNSCANNABLE"
	SymMacro            = "ATTACHMENT_MACRO"
	SymMacroAuto        = "ATTACHMENT_MACRO_AUTOEXEC"
	SymDDE              = "ATTACHMENT_DDE"
	SymPDFActive        = "ATTACHMENT_PDF_ACTIVE"
	SymEmbedded         = "ATTACHMENT_EMBEDDED_OBJECT"
	SymExternalTemplate = "ATTACHMENT_EXTERNAL_TEMPLATE"
	SymEncrypted        = "ATTACHMENT_ENCRYPTED"
	SymMismatch         = "ATTACHMENT_TYPE_MISMATCH"
	SymDisguisedName    = "ATTACHMENT_DISGUISED_NAME"
	SymMalformed        = "ATTACHMENT_MALFORMED"
	SymDisarmed         = "ATTACHMENT_DISARMED"
)

// symbolOf maps a finding kind to its symbol and default score.
func symbolOf(f attachments.Finding) (string, float64) {
	if f.Category == attachments.CategoryPolicy {
		return policySymbol(f.Kind), 0
	}
	switch f.Kind {
	case attachments.KindVBA, attachments.KindXLM:
		return SymMacro, 3
	case attachments.KindVBAAutoExec:
		return SymMacroAuto, 5
	case attachments.KindDDE:
		return SymDDE, 5
	case attachments.KindPDFJavaScript, attachments.KindPDFLaunch, attachments.KindPDFAutoAction:
		return SymPDFActive, 3
	case attachments.KindOLEPackage, attachments.KindRTFObject, attachments.KindPDFEmbeddedFile:
		return SymEmbedded, 2
	case attachments.KindExternalTemplate:
		return SymExternalTemplate, 4
	case attachments.KindNameTypeMismatch, attachments.KindZipNameMismatch, attachments.KindArchiveSizeLie, attachments.KindZipDirectoryMismatch:
		return SymMismatch, 3
	case attachments.KindNameBidi, attachments.KindNameNUL:
		return SymDisguisedName, 5
	}
	switch f.Category {
	case attachments.CategoryUnscannable:
		return SymUnscannable, 3
	case attachments.CategoryEncrypted:
		return SymEncrypted, 1
	case attachments.CategoryMalformed:
		return SymMalformed, 0.5
	}
	return "ATTACHMENT_SUSPICIOUS", 2
}

// Config is the attachment check's configuration.
type Config struct {
	// Rule files in MailScanner's format, tried in order (the first rule
	// that matches in any of them decides). "default" is chainmail's own
	// set; a relative path is relative to the configuration file.
	FilenameRules        []string `yaml:"filename_rules"`
	FiletypeRules        []string `yaml:"filetype_rules"`
	ArchiveFilenameRules []string `yaml:"archive_filename_rules"`
	ArchiveFiletypeRules []string `yaml:"archive_filetype_rules"`
	// RenamePattern is MailScanner's Default Rename Pattern for plain
	// "rename" rules; __FILENAME__ stands for the name.
	RenamePattern string `yaml:"rename_pattern"`
	// Limits, each reached one an "unscannable" finding.
	MaxAttachments int         `yaml:"max_attachments"`
	MaxFileSize    checks.Size `yaml:"max_file_size"`
	MaxTotal       checks.Size `yaml:"max_total"`
	MaxRatio       float64     `yaml:"max_ratio"`
	MaxEntries     int         `yaml:"max_entries"`
	MaxDepth       int         `yaml:"max_depth"`
	MaxMIMEDepth   int         `yaml:"max_mime_depth"`
	MaxMIMEParts   int         `yaml:"max_mime_parts"`
	// Message-format policy (policy.go): what a message/partial
	// fragment, a message/external-body, an encrypted or a signed
	// message, a file over MaxAttachmentSize (decoded, not inside an
	// archive; 0: no limit) costs: allow, quarantine or reject.
	PartialMessages     PolicyAction `yaml:"partial_messages"`
	ExternalBody        PolicyAction `yaml:"external_body"`
	EncryptedMessages   PolicyAction `yaml:"encrypted_messages"`
	SignedMessages      PolicyAction `yaml:"signed_messages"`
	MaxAttachmentSize   checks.Size  `yaml:"max_attachment_size"`
	OversizeAttachments PolicyAction `yaml:"oversize_attachments"`
	// ActiveContent is the QuickSand policy (quicksand.go): per category
	// of file, what is done with it.
	ActiveContent ActiveContent `yaml:"active_content"`
	// MaxEvents bounds the log lines one message gets.
	MaxEvents int `yaml:"max_events"`
	// MemoryBudget is shared by every message being checked at once:
	// the bytes of whole files held for unpacking (default 512MiB).
	// Beyond it, a message waits up to MemoryWait (default 10s), then
	// what could not be unpacked is unscannable.
	MemoryBudget checks.Size   `yaml:"memory_budget"`
	MemoryWait   time.Duration `yaml:"memory_wait"`
	// Memory is the budget itself (nil: the process's own, sized by
	// MemoryBudget).
	Memory *attachments.Memory `yaml:"-"`

	// BaseDir resolves relative rule file paths (set by the composition
	// root to the configuration file's directory).
	BaseDir string `yaml:"-"`
}

// DefaultConfig returns the defaults: chainmail's own rules and the
// limits of the issue (200 attachments, depth 5, …).
func DefaultConfig() Config {
	return Config{
		FilenameRules:        []string{"default"},
		FiletypeRules:        []string{"default"},
		ArchiveFilenameRules: []string{"default"},
		ArchiveFiletypeRules: []string{"default"},
		RenamePattern:        "__FILENAME__.disarmed",
		MaxAttachments:       200,
		MaxFileSize:          32 << 20,
		MaxTotal:             256 << 20,
		MaxRatio:             100,
		MaxEntries:           1000,
		MaxDepth:             5,
		MaxMIMEDepth:         50,
		MaxMIMEParts:         1000,
		MaxEvents:            20,
		MemoryBudget:         attachments.DefaultMemory,
		MemoryWait:           10 * time.Second,
		PartialMessages:      PolicyReject,
		ExternalBody:         PolicyReject,
		EncryptedMessages:    PolicyAllow,
		SignedMessages:       PolicyAllow,
		OversizeAttachments:  PolicyReject,
		ActiveContent:        DefaultActiveContent(),
	}
}

// processMemory is the memory budget of the process: one for every
// attachment check, kept across configuration reloads.
var processMemory = attachments.NewMemory(attachments.DefaultMemory)

// Check is the attachment check.
type Check struct {
	cfg                                            Config
	filename, filetype, archFilename, archFiletype *attachments.RuleSet
}

// New loads the rule files and returns the check.
func New(cfg Config) (*Check, error) {
	c := &Check{cfg: cfg}
	var err error
	if c.filename, err = loadRules(cfg.BaseDir, cfg.FilenameRules, attachments.FilenameRules); err != nil {
		return nil, err
	}
	if c.filetype, err = loadRules(cfg.BaseDir, cfg.FiletypeRules, attachments.FiletypeRules); err != nil {
		return nil, err
	}
	if c.archFilename, err = loadRules(cfg.BaseDir, cfg.ArchiveFilenameRules, attachments.ArchiveFilenameRules); err != nil {
		return nil, err
	}
	if c.archFiletype, err = loadRules(cfg.BaseDir, cfg.ArchiveFiletypeRules, attachments.ArchiveFiletypeRules); err != nil {
		return nil, err
	}
	if c.cfg.MaxEvents <= 0 {
		c.cfg.MaxEvents = 20
	}
	if c.cfg.MemoryBudget > 0 && c.cfg.MaxFileSize > 0 && c.cfg.MemoryBudget < c.cfg.MaxFileSize {
		return nil, fmt.Errorf("attachment: memory_budget %d is smaller than max_file_size %d: files that size could never be unpacked", c.cfg.MemoryBudget, c.cfg.MaxFileSize)
	}
	if c.cfg.MemoryWait < 0 {
		return nil, fmt.Errorf("attachment: memory_wait %s is negative", c.cfg.MemoryWait)
	}
	if c.cfg.Memory == nil {
		c.cfg.Memory = processMemory
		c.cfg.Memory.SetLimit(int64(c.cfg.MemoryBudget))
	}
	return c, nil
}

// loadRules joins the named rule files into one set.
func loadRules(base string, files []string, which string) (*attachments.RuleSet, error) {
	out := &attachments.RuleSet{Name: which}
	for _, f := range files {
		var rs *attachments.RuleSet
		var err error
		if f == "default" {
			rs, err = attachments.DefaultRules(which)
		} else {
			p := f
			if !filepath.IsAbs(p) && base != "" {
				p = filepath.Join(base, p)
			}
			rs, err = attachments.LoadRules(p)
			if errors.Is(err, os.ErrNotExist) {
				err = fmt.Errorf("%s rules: %w", which, err)
			}
		}
		if err != nil {
			return nil, err
		}
		out.Rules = append(out.Rules, rs.Rules...)
	}
	return out, nil
}

// Name implements checks.Check.
func (c *Check) Name() string { return "attachment" }

// hit is one rule that matched one file.
type hit struct {
	file *attachments.File
	rule *attachments.Rule
	kind string // "Filename" or "Filetype"
}

// Check implements checks.Check.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	header := m.RawHeader()
	src, size := attachments.Message(header, m.Body)
	rep := attachments.ScanContext(ctx, src, size, attachments.Options{
		Walk:           attachments.WalkOptions{MaxDepth: c.cfg.MaxMIMEDepth, MaxParts: c.cfg.MaxMIMEParts},
		MaxAttachments: c.cfg.MaxAttachments, MaxFileSize: int64(c.cfg.MaxFileSize), MaxTotal: int64(c.cfg.MaxTotal),
		MaxRatio: c.cfg.MaxRatio, MaxEntries: c.cfg.MaxEntries, MaxDepth: c.cfg.MaxDepth,
		Memory: c.cfg.Memory, MemoryWait: c.cfg.MemoryWait,
		MaxAttachmentSize: int64(c.cfg.MaxAttachmentSize),
	})
	if err := ctx.Err(); err != nil {
		return checks.Result{Status: checks.StatusTimeout, Err: err}
	}
	hits := c.match(rep)
	return c.result(m, src, int64(len(header)), size, rep, hits)
}

// match applies the rules to every file, MailScanner's way: the filename
// rules to the file's names, the filetype rules to its description and
// (for rules that have one) MIME type; a file must pass both.
func (c *Check) match(rep *attachments.Report) []hit {
	var hits []hit
	for _, f := range rep.Files {
		fn, ft := c.filename, c.filetype
		if f.Member {
			fn, ft = c.archFilename, c.archFiletype
		}
		if names := f.NameList(); len(names) > 0 {
			if r := fn.MatchName(names...); r != nil && r.Action != attachments.Allow {
				hits = append(hits, hit{f, r, "Filename"})
			}
		}
		if f.Type.Description == "" || f.Encrypted {
			continue
		}
		if r := ft.MatchType(f.Type.Description); r != nil && r.Action != attachments.Allow {
			hits = append(hits, hit{f, r, "Filetype"})
		}
		if r := ft.MatchMIME(f.Type.MIME); r != nil && r.Action != attachments.Allow {
			hits = append(hits, hit{f, r, "Filetype"})
		}
	}
	return hits
}

// displayName is the name a file is logged with: a MIME part's file name,
// a member's path inside its part ("bundle.zip/docs/x.exe").
func displayName(f *attachments.File) string {
	if f.Entity != nil && f.Path != f.Entity.Path {
		if rest := strings.TrimPrefix(f.Path, f.Entity.Path+"/"); rest != f.Path {
			return rest
		}
	}
	if f.Name != "" {
		return f.Name
	}
	return "unnamed-" + f.Path
}

func (c *Check) result(m *checks.Message, src interface {
	ReadAt([]byte, int64) (int, error)
}, headerLen, size int64, rep *attachments.Report, hits []hit) checks.Result {
	r := checks.Result{Status: checks.StatusClean, Facts: map[string]any{}}
	var events []checks.Event
	blocked, reasons := false, []string{}
	var edits []attachments.Edit
	var deleted, renamed []string
	eol := attachments.LineEnding(src)
	// A file a deny+delete rule removes is gone: later rules (its
	// filetype, other files in the same part) no longer apply to it, as in
	// MailScanner, where the file is deleted before the next check runs.
	removed := map[*attachments.Entity]bool{}
	for _, h := range hits {
		if h.rule.Action == attachments.DenyDelete {
			if t := attachments.Editable(h.file.Entity); t != nil && t.Start >= headerLen {
				removed[t] = true
			}
		}
	}
	done := map[*attachments.Entity]bool{}
	fileAction, renamedTo := map[*attachments.File]string{}, map[*attachments.File]string{}
	for _, h := range hits {
		name := displayName(h.file)
		if t := attachments.Editable(h.file.Entity); t != nil && removed[t] {
			if h.rule.Action != attachments.DenyDelete || done[t] {
				continue
			}
			done[t] = true
		}
		fh := verdictlog.FileHit{Filename: name, Path: h.file.Path, Action: h.rule.Action.String(), Text: h.rule.LogText, Rule: fmt.Sprintf("%s:%d", h.rule.File, h.rule.Line)}
		if h.kind == "Filetype" {
			events = append(events, verdictlog.Filetype(m.QueueID, fh))
		} else {
			events = append(events, verdictlog.Filename(m.QueueID, fh))
		}
		switch h.rule.Action {
		case attachments.Deny, attachments.Redirect:
			blocked = true
			fileAction[h.file] = FileBlocked
			reasons = append(reasons, h.kind+" Checks: "+orDash(h.rule.LogText)+" ("+name+")")
		case attachments.DenyDelete:
			target := attachments.Editable(h.file.Entity)
			if target == nil || target.Start < headerLen {
				// Nothing to cut out without touching the header: the
				// file is the message itself.
				blocked = true
				fileAction[h.file] = FileBlocked
				reasons = append(reasons, h.kind+" Checks: "+orDash(h.rule.LogText)+" ("+name+"; cannot be removed alone)")
				continue
			}
			user := h.rule.UserText
			if user == "" {
				user = h.rule.LogText
			}
			edits = append(edits, attachments.Edit{Entity: target, Data: attachments.RemovalNote(name, user, eol)})
			deleted = append(deleted, name)
		case attachments.Rename:
			if h.file.Member || h.file.Entity == nil || h.file.Name == "" || attachments.Editable(h.file.Entity) != h.file.Entity {
				continue // only a MIME part's own name can be rewritten
			}
			newName := h.rule.RenamedName(h.file.Name, c.cfg.RenamePattern)
			hdr, err := attachments.RenameHeader(h.file.Entity, newName)
			if err != nil {
				continue
			}
			edits = append(edits, attachments.Edit{Entity: h.file.Entity, Data: hdr, HeaderOnly: true})
			renamed = append(renamed, name+" → "+newName)
			fileAction[h.file], renamedTo[h.file] = FileRenamed, newName
		}
	}
	q := &quicksand{consumed: map[int]bool{}}
	if !blocked {
		q = c.quicksand(m.QueueID, src, headerLen, rep, removed)
		edits = append(edits, q.edits...)
		deleted = append(deleted, q.removed...)
		events = append(events, q.events...)
	}
	// Findings of files the active-content policy removed, disarmed or
	// delivered by its settings no longer decide the status.
	cats := map[attachments.Category][]attachments.Finding{}
	for i, f := range rep.Findings {
		if !q.consumed[i] {
			cats[f.Category] = append(cats[f.Category], f)
		}
	}
	// Symbols: one per kind of finding, the highest score of its kind.
	syms := map[string]checks.Symbol{}
	addSym := func(name string, score float64, detail string) {
		if s, ok := syms[name]; !ok || score > s.Score {
			syms[name] = checks.Symbol{Name: name, Score: score, Detail: detail}
		}
	}
	refused, held := append([]string{}, q.refused...), append([]string{}, q.held...)
	stops := map[string]bool{} // paths of files a finding refuses or holds
	for _, f := range rep.Findings {
		switch c.policyOf(f) {
		case PolicyReject:
			refused = append(refused, f.Kind.String())
			stops[f.Path] = true
		case PolicyQuarantine:
			held = append(held, f.Kind.String())
			stops[f.Path] = true
		}
		if c.silent(f) {
			continue
		}
		name, score := symbolOf(f)
		addSym(name, score, f.Detail)
		if f.Category == attachments.CategoryMalformed {
			continue
		}
		file := f.File
		switch {
		case file != "":
		case f.Path != "" && f.Path != "1":
			file = "unnamed-" + f.Path
		default:
			file = "message"
		}
		events = append(events, verdictlog.AttachmentFinding{Category: string(f.Category), Kind: f.Kind.String(), Path: f.Path, File: f.File, Shown: file, Detail: f.Detail}.Event(m.QueueID))
	}
	if blocked {
		addSym(SymBlocked, 10, strings.Join(reasons, "; "))
	}
	if len(deleted) > 0 && !blocked {
		addSym(SymDeleted, 1, strings.Join(deleted, ", "))
	}
	if len(q.disarmed) > 0 && !blocked {
		addSym(SymDisarmed, 0, strings.Join(q.disarmed, ", "))
	}
	for _, s := range syms {
		r.Symbols = append(r.Symbols, s)
	}
	sort.Slice(r.Symbols, func(i, j int) bool { return r.Symbols[i].Name < r.Symbols[j].Name })
	for _, s := range r.Symbols {
		r.Score += s.Score
	}

	r.Facts["blocked"] = blocked
	r.Facts["unscannable"] = len(cats[attachments.CategoryUnscannable]) > 0
	r.Facts["suspicious"] = len(cats[attachments.CategorySuspicious]) > 0
	r.Facts["encrypted"] = len(cats[attachments.CategoryEncrypted]) > 0
	r.Facts["malformed"] = len(cats[attachments.CategoryMalformed]) > 0
	r.Facts["attachments"] = rep.Attachments
	r.Facts["files"] = len(rep.Files)
	r.Facts["deleted"] = len(deleted)
	r.Facts["renamed"] = len(renamed)
	r.Facts["disarmed"] = len(q.disarmed)
	r.Facts["active_refused"] = len(q.refused) > 0
	var kinds []string
	for _, f := range rep.Findings {
		kinds = append(kinds, f.Kind.String())
	}
	r.Facts["findings"] = uniq(kinds)
	r.Facts["refused"] = uniq(refused)
	r.Facts["held"] = uniq(held)

	switch {
	case blocked:
		r.Status = checks.StatusBlocked
		r.Reason = strings.Join(reasons, "; ")
	case len(cats[attachments.CategoryUnscannable]) > 0:
		r.Status = StatusUnscannable
		r.Reason = firstDetail(cats[attachments.CategoryUnscannable])
	case len(cats[attachments.CategorySuspicious]) > 0:
		r.Status = StatusSuspicious
		r.Reason = firstDetail(cats[attachments.CategorySuspicious])
	case len(deleted) > 0:
		r.Status = StatusDeleted
		r.Reason = "removed " + strings.Join(deleted, ", ")
	case len(q.disarmed) > 0:
		r.Status = StatusDisarmed
		r.Reason = "disarmed " + strings.Join(q.disarmed, ", ")
	case len(cats[attachments.CategoryEncrypted]) > 0:
		r.Status = StatusEncrypted
		r.Reason = firstDetail(cats[attachments.CategoryEncrypted])
	}
	if r.Reason == "" {
		for _, f := range rep.Findings {
			if a := c.policyOf(f); a == PolicyReject || a == PolicyQuarantine {
				r.Reason = firstDetail([]attachments.Finding{f})
				break
			}
		}
	}
	editFailed := false
	if !blocked && len(edits) > 0 {
		nb, err := attachments.ApplyEdits(src, headerLen, size, edits)
		if err == nil {
			r.NewBody = nb
		} else {
			r.Status, r.Reason = checks.StatusBlocked, "could not remove attachments: "+err.Error()
			r.Facts["blocked"] = true
			editFailed = true
		}
	}
	for f, a := range q.outcome {
		if _, ok := fileAction[f]; !ok || a == FileBlocked {
			fileAction[f] = a
		}
	}
	r.Facts["outcomes"] = fileOutcomes(rep.Files, removed, fileAction, renamedTo, q.category, stops, editFailed)
	if len(events) > c.cfg.MaxEvents {
		more := len(events) - c.cfg.MaxEvents
		events = append(events[:c.cfg.MaxEvents], verdictlog.AttachmentOverflow(m.QueueID, more))
	}
	r.Events = events
	return r
}

// What became of a file (FileOutcome.Action).
const (
	FileDelivered = "delivered"
	FileRemoved   = "removed"
	FileRenamed   = "renamed"
	FileBlocked   = "blocked"
)

// FileOutcome is what the check did with one file it saw, as replay
// --json reports it: Name as the log lines show it (a member with its
// path inside the part, "bundle.zip/docs/x.exe"), Path where it sits in
// the message ("2/bundle.zip/docs/x.exe"), Action one of the File*
// constants (blocked: the check refuses or holds the message because of
// it), RenamedTo the new name of a renamed file.
type FileOutcome struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	Action    string `json:"action"`
	RenamedTo string `json:"renamed_to,omitempty"`
	// Category is the file's active-content category: safe,
	// suspicious, encrypted or indeterminate.
	Category string `json:"category,omitempty"`
}

// fileOutcomes lists every file of the scan with its outcome (the parts
// of an Office Open XML document are not files of their own). A file
// removed by a deny+delete rule takes the files inside it along; when
// the removal could not be made, the message is blocked for it.
func fileOutcomes(files []*attachments.File, removed map[*attachments.Entity]bool, action, renamedTo, category map[*attachments.File]string, stops map[string]bool, editFailed bool) []FileOutcome {
	out := make([]FileOutcome, 0, len(files))
	for _, f := range files {
		if f.Parent != nil && document(f.Parent) && f.Container == "zip" && action[f] != FileBlocked && !stops[f.Path] {
			continue // a part of an Office document, judged with it
		}
		o := FileOutcome{Name: displayName(f), Path: f.Path, Action: FileDelivered, Category: category[f]}
		if t := attachments.Editable(f.Entity); t != nil && removed[t] {
			o.Action = FileRemoved
			if editFailed {
				o.Action = FileBlocked
			}
		}
		if a, ok := action[f]; ok {
			o.Action, o.RenamedTo = a, renamedTo[f]
		}
		if stops[f.Path] {
			o.Action = FileBlocked
		}
		if editFailed && (o.Action == FileRemoved || o.Action == FileDisarmed) {
			o.Action = FileBlocked
		}
		out = append(out, o)
	}
	// An archive whose member blocks the message blocks it too.
	for i := range out {
		if out[i].Action != FileBlocked {
			continue
		}
		for j := range out {
			if strings.HasPrefix(out[i].Path, out[j].Path+"/") {
				out[j].Action = FileBlocked
			}
		}
	}
	return out
}

func firstDetail(fs []attachments.Finding) string {
	f := fs[0]
	if f.File != "" {
		return f.Detail + " (" + f.File + ")"
	}
	return f.Detail
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func uniq(in []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Facts implements checks.Factual: the facts rules see, with the values
// they have when the check did not run.
func (*Check) Facts() map[string]any {
	return map[string]any{
		"blocked": false, "unscannable": false, "suspicious": false, "encrypted": false, "malformed": false,
		"attachments": 0, "files": 0, "deleted": 0, "renamed": 0, "findings": []string{},
		"refused": []string{}, "held": []string{}, "outcomes": []FileOutcome{},
		"disarmed": 0, "active_refused": false,
	}
}
