package checks

import "chainmail/checks/secret"

// Secret is a configuration value that must never be printed (see package
// secret): `chainmail config check` shows "(hidden)" for it. Code that
// needs the value converts: string(s).
type Secret = secret.Value

// Hidden is what is printed instead of a secret.
const Hidden = secret.Hidden
