package checks

// StringsFact returns the fact name of r as a list of strings: a []string
// as a check sets it, or the strings of a []any as the fact reads back
// from JSON; nil when r has no such list.
func (r Result) StringsFact(name string) []string {
	switch v := r.Facts[name].(type) {
	case []string:
		return v
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
