package scope

// WithoutIndex compiles a policy whose decisions evaluate every condition
// that applies to the tool, for comparison with the indexed decisions.
func WithoutIndex() Option { return func(o *options) { o.noIndex = true } }
