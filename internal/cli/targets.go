package cli

import "strings"

// targetsFlag collects repeated --target URLs; first points at the first one, which
// everything that needs one target uses (probes, proxies, the result's target).
type targetsFlag struct {
	first *string
	all   []string
}

func (t *targetsFlag) String() string {
	if t == nil {
		return ""
	}
	return strings.Join(t.all, ",")
}

func (t *targetsFlag) Set(v string) error {
	if len(t.all) == 0 {
		*t.first = v
	}
	t.all = append(t.all, v)
	return nil
}

// several returns the targets when there is more than one, else nil.
func (t *targetsFlag) several() []string {
	if len(t.all) < 2 {
		return nil
	}
	return append([]string(nil), t.all...)
}
