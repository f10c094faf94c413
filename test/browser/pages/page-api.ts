// Test pages publish the functions a test calls through TestPage.api() (test/browser/harness.ts).
// Arguments and results cross the page boundary by value: numbers, strings, plain objects,
// arrays and typed arrays survive; class instances do not.
export function exposePageApi<Api extends object>(api: Api): void {
  (globalThis as { murmurPageApi?: object }).murmurPageApi = api;
}
