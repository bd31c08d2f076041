// pw_schedule.js: the Playwright side of the daemon schedule benchmark (peer_schedule.js
// does the work).
//   node pw_schedule.js --targets FILE --output FILE --duration S [--concurrency 8]
'use strict';
require('./peer_schedule').run('playwright', 'pw_schedule.js');
