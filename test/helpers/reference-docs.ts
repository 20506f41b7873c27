/**
 * The file holding the reference tables (reason codes, settings, errors, policy reference) that
 * the docs tests keep in step with the code. Moving the tables moves this one constant.
 */
export const REFERENCE_DOC = "README.md";
