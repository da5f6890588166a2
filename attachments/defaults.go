package attachments

import (
	"embed"
	"fmt"
)

//go:embed rules/*.rules
var defaultRules embed.FS

// Rule sets chainmail ships (see rules/*.rules).
const (
	FilenameRules        = "filename"
	FiletypeRules        = "filetype"
	ArchiveFilenameRules = "archives.filename"
	ArchiveFiletypeRules = "archives.filetype"
)

// DefaultRules returns one of chainmail's own rule sets, by the names
// above.
func DefaultRules(which string) (*RuleSet, error) {
	f, err := defaultRules.Open("rules/" + which + ".rules")
	if err != nil {
		return nil, fmt.Errorf("attachments: no default rule set %q", which)
	}
	defer f.Close()
	return ParseRules("(chainmail default) "+which+".rules", f)
}
