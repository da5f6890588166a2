package attachment

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/verdictlog"

	"gopkg.in/yaml.v3"
)

// The active-content policy, QuickSand's way: every file the message
// carries (inside archives and TNEF too) is put in one category —
//
//   - safe: nothing active found;
//   - suspicious: active content (VBA or Excel 4 macros, DDE, remote
//     templates, embedded objects, PDF JavaScript and actions);
//   - encrypted: an encrypted document or archive, whose content cannot
//     be seen;
//   - indeterminate: it could not be analysed (larger than max_file_size,
//     no memory to unpack it, a compound file that cannot be read);
//
// and the category's action is applied to it: deliver, disarm (suspicious
// only: the file is sanitised by attachments.Disarm and delivered),
// remove (the file is cut out, a note put in its place), quarantine or
// reject (the message). A disarm that fails falls back to cannot_disarm.
//
// A file inside an Office document (its parts, an embedded object) is
// judged with the document: the document is what is disarmed or removed.
// A file inside an archive is removed or disarmed by rewriting the
// archive when the archive is a zip of its own MIME part; otherwise the
// whole archive is removed ("it isn’t possible to cleanup").

// FileAction is what the active-content policy does with a file of one
// category.
type FileAction string

// File actions.
const (
	ActionDeliver    FileAction = "deliver"
	ActionDisarm     FileAction = "disarm"
	ActionRemove     FileAction = "remove"
	ActionQuarantine FileAction = "quarantine"
	ActionReject     FileAction = "reject"
)

// ActiveContent is the active_content option: one action per category.
type ActiveContent struct {
	// Suspicious: disarm (default), remove, deliver, quarantine or reject.
	Suspicious FileAction `yaml:"suspicious"`
	// CannotDisarm: what a failed disarm falls back to: remove
	// (default), quarantine or reject.
	CannotDisarm FileAction `yaml:"cannot_disarm"`
	// Encrypted: quarantine (default), deliver (QuickSand's "authorize"),
	// remove or reject.
	Encrypted FileAction `yaml:"encrypted"`
	// Indeterminate: quarantine (default), deliver, remove or reject.
	Indeterminate FileAction `yaml:"indeterminate"`
}

// DefaultActiveContent disarms what it can and removes what it cannot;
// what cannot be seen into is held, as the failure policy wants.
func DefaultActiveContent() ActiveContent {
	return ActiveContent{Suspicious: ActionDisarm, CannotDisarm: ActionRemove, Encrypted: ActionQuarantine, Indeterminate: ActionQuarantine}
}

// UnmarshalYAML reads the mapping, each action checked against the ones
// its category allows, with the line of a wrong one.
func (a *ActiveContent) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: attachment: active_content: want a mapping (suspicious, cannot_disarm, encrypted, indeterminate)", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var dst *FileAction
		allowed := []FileAction{ActionDeliver, ActionRemove, ActionQuarantine, ActionReject}
		switch k.Value {
		case "suspicious":
			dst, allowed = &a.Suspicious, []FileAction{ActionDisarm, ActionRemove, ActionDeliver, ActionQuarantine, ActionReject}
		case "cannot_disarm":
			dst, allowed = &a.CannotDisarm, []FileAction{ActionRemove, ActionQuarantine, ActionReject}
		case "encrypted":
			dst = &a.Encrypted
		case "indeterminate":
			dst = &a.Indeterminate
		default:
			return fmt.Errorf("line %d: attachment: active_content: unknown setting %q (want suspicious, cannot_disarm, encrypted, indeterminate)", k.Line, k.Value)
		}
		if !slices.Contains(allowed, FileAction(v.Value)) {
			var want []string
			for _, w := range allowed {
				want = append(want, string(w))
			}
			return fmt.Errorf("line %d: attachment: active_content: %s: unknown action %q (want %s)", v.Line, k.Value, v.Value, strings.Join(want, ", "))
		}
		*dst = FileAction(v.Value)
	}
	return nil
}

// Categories of a file (FileOutcome.Category).
const (
	CategorySafe          = "safe"
	CategorySuspicious    = "suspicious"
	CategoryEncrypted     = "encrypted"
	CategoryIndeterminate = "indeterminate"
)

// FileDisarmed is the outcome of a file delivered with its active content
// removed.
const FileDisarmed = "disarmed"

func activeKind(k attachments.FindingKind) bool {
	switch k {
	case attachments.KindVBA, attachments.KindVBAAutoExec, attachments.KindXLM, attachments.KindDDE,
		attachments.KindExternalTemplate, attachments.KindOLEPackage, attachments.KindRTFObject,
		attachments.KindPDFJavaScript, attachments.KindPDFLaunch, attachments.KindPDFEmbeddedFile, attachments.KindPDFAutoAction:
		return true
	}
	return false
}

func encryptedKind(k attachments.FindingKind) bool {
	return k == attachments.KindEncryptedDoc || k == attachments.KindEncryptedArchive
}

func indeterminateKind(k attachments.FindingKind) bool {
	return k == attachments.KindLimitSize || k == attachments.KindLimitMemory || k == attachments.KindOLECorrupt
}

// document: a file whose parts are judged with it.
func document(f *attachments.File) bool { return f.Type.Family == attachments.FamilyOffice }

// analysed: a file QuickSand reads for active content (its clean verdict
// is logged).
func analysed(f *attachments.File) bool {
	switch f.Type.Family {
	case attachments.FamilyOffice, attachments.FamilyPDF:
		return true
	}
	return f.Type.MIME == "text/rtf"
}

// unit is a file the policy acts on, with the findings of it and of
// everything inside it that is judged with it.
type unit struct {
	file     *attachments.File
	findings []int
	category string
	kinds    []string
}

// quicksand is what the policy decided for one message.
type quicksand struct {
	edits    []attachments.Edit
	consumed map[int]bool
	events   []checks.Event
	held     []string
	refused  []string
	// outcome and category of each unit's file (and of the files judged
	// with it); removedTop: the MIME parts cut out whole.
	outcome    map[*attachments.File]string
	category   map[*attachments.File]string
	removedTop map[*attachments.Entity]bool
	disarmed   []string
	removed    []string
	blocked    bool // held or refused for active content
}

// unitOf is the file f is judged with: itself, or the outermost Office
// document it is part of.
func unitOf(f *attachments.File) *attachments.File {
	u := f
	for u.Parent != nil && document(u.Parent) {
		u = u.Parent
	}
	return u
}

func top(f *attachments.File) *attachments.File {
	for f.Parent != nil {
		f = f.Parent
	}
	return f
}

// quicksand categorises every file of rep and applies the policy. skip
// holds the MIME parts already removed by deny+delete rules: their files
// are gone, and so is their content.
func (c *Check) quicksand(id string, src io.ReaderAt, headerLen int64, rep *attachments.Report, skip map[*attachments.Entity]bool) *quicksand {
	q := &quicksand{consumed: map[int]bool{}, outcome: map[*attachments.File]string{}, category: map[*attachments.File]string{}, removedTop: map[*attachments.Entity]bool{}}
	byPath := map[string]*attachments.File{}
	for _, f := range rep.Files {
		if _, ok := byPath[f.Path]; !ok {
			byPath[f.Path] = f
		}
	}
	units := map[*attachments.File]*unit{}
	var order []*unit
	unitFor := func(f *attachments.File) *unit {
		uf := unitOf(f)
		u := units[uf]
		if u == nil {
			u = &unit{file: uf}
			units[uf] = u
			order = append(order, u)
		}
		return u
	}
	for _, f := range rep.Files {
		unitFor(f)
	}
	for i, fd := range rep.Findings {
		f := byPath[fd.Path]
		if f == nil || !(activeKind(fd.Kind) || encryptedKind(fd.Kind) || indeterminateKind(fd.Kind)) {
			continue
		}
		u := unitFor(f)
		u.findings = append(u.findings, i)
	}
	partial := false // not every file was read
	for _, fd := range rep.Findings {
		if fd.Kind == attachments.KindLimitTotal || fd.Kind == attachments.KindLimitAttachments {
			partial = true
		}
	}
	for _, u := range order {
		u.category = CategorySafe
		rank := 0
		for _, i := range u.findings {
			k := rep.Findings[i].Kind
			r, cat := 0, ""
			switch {
			case activeKind(k):
				r, cat = 3, CategorySuspicious
			case encryptedKind(k):
				r, cat = 2, CategoryEncrypted
			case indeterminateKind(k):
				r, cat = 1, CategoryIndeterminate
			}
			if r > rank {
				rank, u.category = r, cat
			}
		}
		for _, i := range u.findings {
			u.kinds = append(u.kinds, rep.Findings[i].Kind.String())
		}
		u.kinds = uniq(u.kinds)
	}
	for _, f := range rep.Files {
		q.category[f] = units[unitOf(f)].category
	}

	// Decide, then act per MIME part: a part is rewritten at most once.
	type plan struct {
		u      *unit
		action FileAction
		why    string // verdictlog.Removed* for a removal
		detail string
		data   *attachments.Disarmed
	}
	var plans []*plan
	for _, u := range order {
		f := u.file
		if f.Entity != nil && skip[attachments.Editable(f.Entity)] {
			for _, i := range u.findings {
				q.consumed[i] = true
			}
			continue
		}
		name := displayName(f)
		qs := verdictlog.QuickSand{File: name, Category: u.category}
		if f.Parent != nil {
			qs.File, qs.Archive = f.Name, archiveName(f)
		}
		var act FileAction
		switch u.category {
		case CategorySafe:
			if analysed(f) && !f.Encrypted && !partial && f.Entity != nil {
				q.events = append(q.events, qs.Clean(id))
			}
			continue
		case CategorySuspicious:
			act = c.cfg.ActiveContent.Suspicious
		case CategoryEncrypted:
			act = c.cfg.ActiveContent.Encrypted
		case CategoryIndeterminate:
			act = c.cfg.ActiveContent.Indeterminate
		}
		p := &plan{u: u, action: act}
		if act == ActionDisarm {
			p.data, p.detail = c.disarm(f)
			if p.data == nil {
				p.action, p.why = c.cfg.ActiveContent.CannotDisarm, verdictlog.RemovedCannotDisarm
			}
		}
		if p.action == ActionRemove && p.why == "" {
			switch u.category {
			case CategorySuspicious:
				p.why = verdictlog.RemovedSuspicious
			case CategoryEncrypted:
				p.why = verdictlog.RemovedEncrypted
			default:
				p.why = verdictlog.RemovedTooBig
			}
		}
		plans = append(plans, p)
		switch p.action {
		case ActionQuarantine, ActionReject:
			if p.action == ActionQuarantine {
				q.held = append(q.held, u.kinds...)
			} else {
				q.refused = append(q.refused, u.kinds...)
			}
			q.outcome[f] = FileBlocked
			if u.category == CategorySuspicious && !q.blocked {
				q.events = append(q.events, qs.Blocked(id))
			}
			if u.category == CategorySuspicious {
				q.blocked = true
			}
			continue
		case ActionDeliver:
			switch u.category {
			case CategoryEncrypted:
				q.events = append(q.events, qs.Authorized(id, f.Type.Family == attachments.FamilyArchive))
			case CategoryIndeterminate:
				q.events = append(q.events, qs.Ignored(id, f.Size))
			}
			for _, i := range u.findings {
				q.consumed[i] = true
			}
			continue
		}
		// Disarm or remove: the file's MIME part is rewritten.
		t := top(f)
		target := attachments.Editable(t.Entity)
		if target == nil || target.Start < headerLen || target != t.Entity {
			// Not a part of its own: nothing can be cut out without
			// touching the message header. Held instead.
			q.held = append(q.held, u.kinds...)
			q.outcome[f] = FileBlocked
			continue
		}
		if f.Parent != nil {
			// Inside an archive that is not rewritten: the archive goes.
			if !q.removedTop[target] {
				q.removedTop[target] = true
				q.edits = append(q.edits, attachments.Edit{Entity: target, Data: attachments.RemovalNote(displayName(t), "it carries active content that could not be removed alone", attachments.LineEnding(src))})
				q.events = append(q.events, verdictlog.QuickSand{File: qs.File, Archive: displayName(t), Category: u.category, Action: FileRemoved, Detail: p.detail}.ArchiveRemoved(id))
				q.removed = append(q.removed, displayName(t))
			}
			continue
		}
		if p.action == ActionDisarm {
			data, err := attachments.ReplacePart(target, attachments.PartChange{Name: p.data.Name, MediaType: p.data.MIME, Disarmed: strings.Join(p.data.Removed, "; ")}, p.data.Data)
			if err == nil {
				q.edits = append(q.edits, attachments.Edit{Entity: target, Data: data})
				q.events = append(q.events, qs.Disarmed(id))
				q.outcome[f] = FileDisarmed
				q.disarmed = append(q.disarmed, name)
				continue
			}
			p.action, p.why, p.detail = c.cfg.ActiveContent.CannotDisarm, verdictlog.RemovedCannotDisarm, err.Error()
			if p.action != ActionRemove {
				if p.action == ActionQuarantine {
					q.held = append(q.held, u.kinds...)
				} else {
					q.refused = append(q.refused, u.kinds...)
				}
				q.outcome[f] = FileBlocked
				continue
			}
		}
		q.removedTop[target] = true
		qs.Action, qs.Detail = FileRemoved, p.detail
		q.edits = append(q.edits, attachments.Edit{Entity: target, Data: attachments.RemovalNote(name, removalReason(p.why), attachments.LineEnding(src))})
		q.events = append(q.events, qs.Removed(id, p.why))
		q.removed = append(q.removed, name)
	}
	// What was cut out or disarmed is no longer in the message: its
	// findings no longer speak for the policy.
	for _, p := range plans {
		t := top(p.u.file)
		gone := t.Entity != nil && q.removedTop[attachments.Editable(t.Entity)] || q.outcome[p.u.file] == FileDisarmed
		if gone {
			for _, i := range p.u.findings {
				q.consumed[i] = true
			}
		}
	}
	for f := range q.category {
		if t := top(f); t.Entity != nil && q.removedTop[attachments.Editable(t.Entity)] {
			q.outcome[f] = FileRemoved
		} else if q.outcome[unitOf(f)] == FileDisarmed {
			q.outcome[f] = FileDisarmed
		}
	}
	q.held, q.refused = uniq(q.held), uniq(q.refused)
	return q
}

// archiveName is the name of the archive a member was unpacked from, as
// the log shows it.
func archiveName(f *attachments.File) string {
	p := f.Parent
	for p.Parent != nil && document(p) {
		p = p.Parent
	}
	return displayName(p)
}

func removalReason(why string) string {
	switch why {
	case verdictlog.RemovedSuspicious:
		return "it carries active content (macros, scripts or embedded objects)"
	case verdictlog.RemovedCannotDisarm:
		return "it carries active content that could not be removed safely"
	case verdictlog.RemovedEncrypted:
		return "it is encrypted and could not be checked"
	}
	return "it is too big to be checked"
}

// disarm reads a MIME part's file and disarms it; on failure it returns
// nil and why.
func (c *Check) disarm(f *attachments.File) (*attachments.Disarmed, string) {
	if f.Parent != nil || f.Entity == nil {
		return nil, "inside an archive"
	}
	limit := int64(c.cfg.MaxFileSize)
	data, err := io.ReadAll(io.LimitReader(f.Entity.Open(), limit+1))
	if err != nil {
		return nil, "part could not be read: " + err.Error()
	}
	if int64(len(data)) > limit {
		return nil, "larger than max_file_size"
	}
	d, err := attachments.Disarm(f.Name, data)
	if err != nil {
		if !errors.Is(err, attachments.ErrCannotDisarm) {
			return nil, "cannot be disarmed: " + err.Error()
		}
		return nil, err.Error()
	}
	return d, ""
}
