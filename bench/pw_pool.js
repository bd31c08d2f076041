// pw_pool.js: the Playwright side of the pool benchmark (peer_pool.js does the work).
//   node pw_pool.js --base URL [--tasks N] [--concurrency C] [--pages js|real] [--defaults]
'use strict';
require('./peer_pool').run('playwright', 'pw_pool.js');
