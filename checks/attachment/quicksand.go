package attachment

import (
	"errors"
	"fmt"
	"io"
	"path"
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
	zips := map[*attachments.Entity]*zipWork{}
	var zipOrder []*zipWork
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
			if f.Parent == t && f.Container == "zip" && f.Entry != "" {
				// A member of a zip of its own: the zip is rewritten.
				z := zips[target]
				if z == nil {
					z = &zipWork{top: t, target: target, changes: map[string]*attachments.ZipChange{}}
					zips[target] = z
					zipOrder = append(zipOrder, z)
				}
				if p.action == ActionDisarm {
					z.changes[f.Entry] = &attachments.ZipChange{Name: path.Join(path.Dir(f.Entry), p.data.Name), Data: p.data.Data}
					if p.data.Name == "" {
						z.changes[f.Entry].Name = ""
					}
					z.events = append(z.events, qs.Disarmed(id))
					z.disarmed = append(z.disarmed, f)
				} else {
					z.changes[f.Entry] = &attachments.ZipChange{Remove: true}
					qs.Action, qs.Detail = FileRemoved, p.detail
					z.events = append(z.events, qs.Removed(id, p.why))
					z.removed = append(z.removed, f)
				}
				continue
			}
			if strings.HasPrefix(t.Entity.MediaType, "text/") {
				// Uuencoded in the message text: cutting out the part
				// would take the text with it. Held instead.
				q.held = append(q.held, u.kinds...)
				q.outcome[f] = FileBlocked
				continue
			}
			// Inside an archive that cannot be rewritten: the archive goes.
			q.removeArchive(id, t, target, src, qs.File, u.category, p.detail)
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
	// The zips whose members were disarmed or removed, unless the whole
	// zip went for another of its files.
	for _, z := range zipOrder {
		if q.removedTop[z.target] {
			continue
		}
		data, err := c.partData(z.top)
		var nz, part []byte
		if err == nil {
			nz, err = attachments.RewriteZip(data, z.changes)
		}
		if err == nil {
			var what []string
			for _, f := range z.disarmed {
				what = append(what, "disarmed "+f.Entry)
			}
			for _, f := range z.removed {
				what = append(what, "removed "+f.Entry)
			}
			part, err = attachments.ReplacePart(z.target, attachments.PartChange{Disarmed: strings.Join(what, "; ")}, nz)
		}
		if err != nil {
			q.removeArchive(id, z.top, z.target, src, "", CategorySuspicious, "archive could not be rewritten: "+err.Error())
			continue
		}
		q.edits = append(q.edits, attachments.Edit{Entity: z.target, Data: part})
		q.events = append(q.events, z.events...)
		for _, f := range z.disarmed {
			q.outcome[f] = FileDisarmed
			q.disarmed = append(q.disarmed, displayName(f))
		}
		for _, f := range z.removed {
			q.outcome[f] = FileRemoved
			q.removed = append(q.removed, displayName(f))
		}
	}
	// What was cut out or disarmed is no longer in the message: its
	// findings no longer speak for the policy.
	for _, p := range plans {
		t := top(p.u.file)
		gone := t.Entity != nil && q.removedTop[attachments.Editable(t.Entity)] || q.outcome[p.u.file] == FileDisarmed || q.outcome[p.u.file] == FileRemoved
		if gone {
			for _, i := range p.u.findings {
				q.consumed[i] = true
			}
		}
	}
	for f := range q.category {
		u := unitOf(f)
		switch {
		case top(f).Entity != nil && q.removedTop[attachments.Editable(top(f).Entity)]:
			q.outcome[f] = FileRemoved
		case u != f && (q.outcome[u] == FileDisarmed || q.outcome[u] == FileRemoved):
			q.outcome[f] = q.outcome[u]
		}
	}
	// Everything found in a file that is no longer delivered goes with it.
	gone := func(f *attachments.File) bool {
		for x := f; x != nil; x = x.Parent {
			if q.outcome[x] == FileRemoved {
				return true
			}
		}
		return false
	}
	for i, fd := range rep.Findings {
		if f := byPath[fd.Path]; f != nil && gone(f) {
			q.consumed[i] = true
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

// zipWork is a zip of its own MIME part whose members are disarmed or
// removed: the changes, then the lines and outcomes they give once the
// zip is rewritten.
type zipWork struct {
	top               *attachments.File
	target            *attachments.Entity
	changes           map[string]*attachments.ZipChange
	events            []checks.Event
	disarmed, removed []*attachments.File
}

// removeArchive cuts out the MIME part t of an archive (once) because a
// file inside it had to go and the archive cannot be rewritten.
func (q *quicksand) removeArchive(id string, t *attachments.File, target *attachments.Entity, src io.ReaderAt, file, category, detail string) {
	if q.removedTop[target] {
		return
	}
	q.removedTop[target] = true
	q.edits = append(q.edits, attachments.Edit{Entity: target, Data: attachments.RemovalNote(displayName(t), "it carries active content that could not be removed alone", attachments.LineEnding(src))})
	q.events = append(q.events, verdictlog.QuickSand{File: file, Archive: displayName(t), Category: category, Action: FileRemoved, Detail: detail}.ArchiveRemoved(id))
	q.removed = append(q.removed, displayName(t))
}

// partData reads the decoded content of a MIME part's own file, at most
// max_file_size bytes.
func (c *Check) partData(f *attachments.File) ([]byte, error) {
	limit := int64(c.cfg.MaxFileSize)
	data, err := io.ReadAll(io.LimitReader(f.Entity.Open(), limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errors.New("larger than max_file_size")
	}
	return data, nil
}

// disarm reads a file (a MIME part's own, or a member of the zip that is
// one) and disarms it; on failure it returns nil and why.
func (c *Check) disarm(f *attachments.File) (*attachments.Disarmed, string) {
	if f.Entity == nil || f.Parent != nil && (f.Parent.Parent != nil || f.Container != "zip") {
		return nil, "inside an archive that cannot be rewritten"
	}
	data, err := c.partData(top(f))
	if err == nil && f.Parent != nil {
		data, err = attachments.ReadZipEntry(data, f.Entry, int64(c.cfg.MaxFileSize))
	}
	if err != nil {
		return nil, "could not be read: " + err.Error()
	}
	d, err := attachments.Disarm(f.Name, data)
	if err != nil {
		return nil, err.Error()
	}
	return d, ""
}
