/*
 * cdp_names: every CDP method and event name cdpilot uses, in one X-macro list each, so
 * that a name is spelled once and a typo is a compile error rather than a command Chrome
 * answers with "method not found" or an event that never fires. CDP_METHODS(X) and
 * CDP_EVENTS(X) call X(ID, "Domain.name") once per name; this header turns them into
 * constants CDP_M_<ID> (commands, for cdp_conn_send) and CDP_E_<ID> (events, for
 * cdp_conn_on and strcmp on a delivered method). Each constant is a NUL-terminated static
 * string defined in cdp_names.c, usable wherever a string literal was, static initialisers
 * included. To use a new name, add one line to the list. Tests keep their own literals on
 * purpose: they check the list against Chrome, not against itself.
 */
#ifndef CDPILOT_CDP_NAMES_H
#define CDPILOT_CDP_NAMES_H

/* Commands, sorted by domain then name. */
#define CDP_METHODS(X)                                                                          \
	X(BROWSER_CLOSE, "Browser.close")                                                       \
	X(BROWSER_GET_VERSION, "Browser.getVersion")                                            \
	X(BROWSER_SET_DOWNLOAD_BEHAVIOR, "Browser.setDownloadBehavior")                         \
	X(EMULATION_SET_DEVICE_METRICS_OVERRIDE, "Emulation.setDeviceMetricsOverride")          \
	X(EMULATION_SET_USER_AGENT_OVERRIDE, "Emulation.setUserAgentOverride")                  \
	X(FETCH_CONTINUE_REQUEST, "Fetch.continueRequest")                                      \
	X(FETCH_ENABLE, "Fetch.enable")                                                         \
	X(FETCH_FAIL_REQUEST, "Fetch.failRequest")                                              \
	X(INPUT_DISPATCH_KEY_EVENT, "Input.dispatchKeyEvent")                                   \
	X(INPUT_DISPATCH_MOUSE_EVENT, "Input.dispatchMouseEvent")                               \
	X(INPUT_INSERT_TEXT, "Input.insertText")                                                \
	X(NETWORK_ENABLE, "Network.enable")                                                     \
	X(NETWORK_SET_EXTRA_HTTP_HEADERS, "Network.setExtraHTTPHeaders")                        \
	X(NETWORK_SET_CACHE_DISABLED, "Network.setCacheDisabled")                               \
	X(NETWORK_SET_BYPASS_SERVICE_WORKER, "Network.setBypassServiceWorker")                  \
	X(PAGE_ADD_SCRIPT_TO_EVALUATE_ON_NEW_DOCUMENT, "Page.addScriptToEvaluateOnNewDocument") \
	X(PAGE_CAPTURE_SCREENSHOT, "Page.captureScreenshot")                                    \
	X(PAGE_ENABLE, "Page.enable")                                                           \
	X(PAGE_GET_LAYOUT_METRICS, "Page.getLayoutMetrics")                                     \
	X(PAGE_HANDLE_JAVASCRIPT_DIALOG, "Page.handleJavaScriptDialog")                         \
	X(PAGE_NAVIGATE, "Page.navigate")                                                       \
	X(PAGE_SET_LIFECYCLE_EVENTS_ENABLED, "Page.setLifecycleEventsEnabled")                  \
	X(PAGE_STOP_LOADING, "Page.stopLoading")                                                \
	X(RUNTIME_ADD_BINDING, "Runtime.addBinding")                                            \
	X(RUNTIME_CALL_FUNCTION_ON, "Runtime.callFunctionOn")                                   \
	X(RUNTIME_ENABLE, "Runtime.enable")                                                     \
	X(RUNTIME_EVALUATE, "Runtime.evaluate")                                                 \
	X(RUNTIME_RELEASE_OBJECT_GROUP, "Runtime.releaseObjectGroup")                           \
	X(RUNTIME_RUN_IF_WAITING_FOR_DEBUGGER, "Runtime.runIfWaitingForDebugger")               \
	X(RUNTIME_TERMINATE_EXECUTION, "Runtime.terminateExecution")                            \
	X(STORAGE_SET_COOKIES, "Storage.setCookies")                                            \
	X(TARGET_ATTACH_TO_TARGET, "Target.attachToTarget")                                     \
	X(TARGET_CLOSE_TARGET, "Target.closeTarget")                                            \
	X(TARGET_CREATE_BROWSER_CONTEXT, "Target.createBrowserContext")                         \
	X(TARGET_CREATE_TARGET, "Target.createTarget")                                          \
	X(TARGET_DISPOSE_BROWSER_CONTEXT, "Target.disposeBrowserContext")                       \
	X(TARGET_SET_AUTO_ATTACH, "Target.setAutoAttach")                                       \
	X(TARGET_SET_DISCOVER_TARGETS, "Target.setDiscoverTargets")

/* Events, sorted by domain then name. */
#define CDP_EVENTS(X)                                                     \
	X(FETCH_REQUEST_PAUSED, "Fetch.requestPaused")                    \
	X(INSPECTOR_TARGET_CRASHED, "Inspector.targetCrashed")            \
	X(NETWORK_LOADING_FAILED, "Network.loadingFailed")                \
	X(NETWORK_RESPONSE_RECEIVED, "Network.responseReceived")          \
	X(PAGE_FRAME_NAVIGATED, "Page.frameNavigated")                    \
	X(PAGE_FRAME_STARTED_NAVIGATING, "Page.frameStartedNavigating")   \
	X(PAGE_JAVASCRIPT_DIALOG_OPENING, "Page.javascriptDialogOpening") \
	X(PAGE_LIFECYCLE_EVENT, "Page.lifecycleEvent")                    \
	X(PAGE_LOAD_EVENT_FIRED, "Page.loadEventFired")                   \
	X(RUNTIME_BINDING_CALLED, "Runtime.bindingCalled")                \
	X(TARGET_ATTACHED_TO_TARGET, "Target.attachedToTarget")           \
	X(TARGET_DETACHED_FROM_TARGET, "Target.detachedFromTarget")       \
	X(TARGET_TARGET_CRASHED, "Target.targetCrashed")                  \
	X(TARGET_TARGET_CREATED, "Target.targetCreated")

#define CDP__NAME_DECL_M(id, name) extern const char CDP_M_##id[];
#define CDP__NAME_DECL_E(id, name) extern const char CDP_E_##id[];
CDP_METHODS(CDP__NAME_DECL_M)
CDP_EVENTS(CDP__NAME_DECL_E)
#undef CDP__NAME_DECL_M
#undef CDP__NAME_DECL_E

#endif
