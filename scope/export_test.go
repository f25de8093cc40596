package scope

// WithoutIndex compiles a policy whose decisions evaluate every condition
// that applies to the tool, for comparison with the indexed decisions.
func WithoutIndex() Option { return func(o *options) { o.noIndex = true } }

// CachedNames returns how many tool names have a cached plan.
func CachedNames(p *Policy) int {
	nc := &p.ix.byName
	nc.mu.Lock()
	defer nc.mu.Unlock()
	n := len(nc.pending)
	if m := nc.snap.Load(); m != nil {
		n += len(*m)
	}
	for i := range p.ix.litPlans {
		if p.ix.litPlans[i].Load() != nil {
			n++
		}
	}
	return n
}

// SubstringIndexes returns how many substring indexes the policy's plans
// share.
func SubstringIndexes(p *Policy) int { return int(p.subs.n.Load()) }
