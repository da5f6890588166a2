package verdictlog

import (
	"fmt"

	"chainmail/checks"
)

// The attachment check's active-content lines, in the words of Libraesva's
// QuickSand, which existing parsers read (patterns.tsv, rows quicksand).
// Its apostrophes are typographic (’), as QuickSand writes them.

// QuickSand is one file the active-content policy acted on: File its name
// as logged, Archive the archive it was in ("" for a file of its own),
// Category safe, suspicious, encrypted or indeterminate, Action what was
// done (delivered, disarmed, removed, held, refused), Detail why.
type QuickSand struct {
	File, Archive, Category, Action, Detail string
}

type quicksandFacts struct {
	File     string `json:"file"`
	Archive  string `json:"archive,omitempty"`
	Category string `json:"category"`
	Action   string `json:"action"`
	Detail   string `json:"detail,omitempty"`
}

func (q QuickSand) event(line string) checks.Event {
	return checks.Event{Name: "quicksand", Line: line, Facts: quicksandFacts{File: Sanitize(q.File),
		Archive: Sanitize(q.Archive), Category: Sanitize(q.Category), Action: Sanitize(q.Action), Detail: Sanitize(q.Detail)}}
}

// inWhat is "file X in" or "file X from archive A in".
func (q QuickSand) inWhat() string {
	s := "file " + Sanitize(q.File)
	if q.Archive != "" {
		s += " from archive " + Sanitize(q.Archive)
	}
	return s + " in "
}

// Disarmed is "QuickSand disarmed file X [from archive A] in ID".
func (q QuickSand) Disarmed(id string) checks.Event {
	return q.event("QuickSand disarmed " + q.inWhat() + queueID(id))
}

// Why a file was removed (QuickSand.Removed).
const (
	RemovedSuspicious   = "suspicious"
	RemovedCannotDisarm = "cannot-disarm"
	RemovedEncrypted    = "encrypted"
	RemovedTooBig       = "too-big"
)

// Removed is "QuickSand removed file X [from archive A] in ID because
// …": it’s suspicious; it’s suspicious and cannot be disarmed (from an
// archive: it cannot be disarmed); it’s encrypted; it’s too big for
// analysis.
func (q QuickSand) Removed(id, why string) checks.Event {
	var because string
	switch why {
	case RemovedSuspicious:
		because = "it’s suspicious"
	case RemovedCannotDisarm:
		because = "it’s suspicious and cannot be disarmed"
		if q.Archive != "" {
			because = "it cannot be disarmed"
		}
	case RemovedEncrypted:
		because = "it’s encrypted"
	default:
		because = "it’s too big for analysis"
	}
	return q.event("QuickSand removed " + q.inWhat() + queueID(id) + " because " + because)
}

// ArchiveRemoved is "QuickSand removed archive A in ID because it isn’t
// possible to cleanup suspicious content": the file to disarm or remove
// is inside an archive that cannot be rewritten, so the archive goes.
func (q QuickSand) ArchiveRemoved(id string) checks.Event {
	return q.event("QuickSand removed archive " + Sanitize(q.Archive) + " in " + queueID(id) + " because it isn’t possible to cleanup suspicious content")
}

// Authorized is "QuickSand authorized encrypted archive X in ID" (for an
// encrypted document: "… encrypted file X …"): delivered by the policy's
// choice although its content could not be seen.
func (q QuickSand) Authorized(id string, archive bool) checks.Event {
	what := "file "
	if archive {
		what = "archive "
	}
	return q.event("QuickSand authorized encrypted " + what + Sanitize(q.File) + " in " + queueID(id))
}

// Ignored is "QuickSand ignored file X of size S in message ID because
// it’s too big for analysis": delivered unanalysed by the policy's choice.
func (q QuickSand) Ignored(id string, size int64) checks.Event {
	return q.event("QuickSand ignored file " + Sanitize(q.File) + " of size " + quicksandSize(size) + " in message " + queueID(id) + " because it’s too big for analysis")
}

// Clean is "QuickSand found no active content in file X in ID".
func (q QuickSand) Clean(id string) checks.Event {
	return q.event("QuickSand found no active content in file " + Sanitize(q.File) + " in " + queueID(id))
}

// Blocked is "QuickSand blocked message ID with active code because of
// spam rules": the policy holds or refuses the message for its active
// content.
func (q QuickSand) Blocked(id string) checks.Event {
	return q.event("QuickSand blocked message " + queueID(id) + " with active code because of spam rules")
}

// quicksandSize writes a size the way QuickSand does: 80MB, 512KB, 900B.
func quicksandSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMB", (n+1<<19)>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKB", (n+1<<9)>>10)
	}
	return fmt.Sprintf("%dB", n)
}
